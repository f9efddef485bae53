"""gateway.replicated_write.ReplicatedWriter against fake node clients: no server, no sockets."""

from __future__ import annotations

import asyncio
import tracemalloc
from collections.abc import AsyncIterator

import pytest
from gateway_kit import HANDOFFS, PRIMARIES, RING, FakeHealth
from writer_kit import (
    FakeClient,
    KiB,
    MiB,
    body_of,
    chunked,
    make_writer,
    md5,
    request,
    write,
)

from gateway.errors import EntityTooLarge, IncompleteBody, InsufficientStorage, QuorumNotReached
from shardgate.block_sums import BlockSums, blocks_digest
from shardgate.vouch_trailer import encode_trailer

# A body of declared length ends each replica's stream with its last byte, a chunked one with an
# end marker: the failure paths must hold for both.
BOTH_ENDS = pytest.mark.parametrize("declared", [False, True], ids=["chunked", "declared"])


def size_if(declared: bool, data: bytes) -> int | None:
    return len(data) if declared else None


async def test_all_replicas_get_identical_bytes() -> None:
    client = FakeClient()
    data = body_of(100 * KiB + 7)
    outcome = await write(make_writer(client)[0], data, size=len(data))
    assert (outcome.etag, outcome.size) == (md5(data), len(data))
    assert sorted(outcome.holders) == sorted(PRIMARIES)
    assert outcome.missed == () and outcome.handoffs == ()
    assert {n: client.received[n] for n in PRIMARIES} == dict.fromkeys(PRIMARIES, data)
    assert all(c["size"] == len(data) and c["type"] == "image/jpeg" for c in client.calls)
    assert all(dict(c["meta"]) == {"owner": "ann"} for c in client.calls)


@pytest.mark.parametrize("size", [4 * KiB, 100 * KiB + 7])
async def test_a_body_of_declared_length_ends_with_its_last_byte(size: int) -> None:
    # A node answers as soon as it has every byte; the node client reads that answer only once
    # the body has ended, so the body must not wait for an end marker.
    client = FakeClient(dict.fromkeys(PRIMARIES, "eager"))
    data = body_of(size)
    outcome = await write(make_writer(client)[0], data, size=len(data))
    assert client.dropped == []
    assert (outcome.etag, outcome.size) == (md5(data), len(data))
    assert {n: client.received[n] for n in PRIMARIES} == dict.fromkeys(PRIMARIES, data)


async def test_a_body_shorter_than_its_declared_length_commits_nothing() -> None:
    client = FakeClient()
    data = body_of(20 * KiB)
    with pytest.raises(IncompleteBody):
        await write(make_writer(client)[0], data, size=len(data) + 1)
    assert client.visible() == set()


@BOTH_ENDS
async def test_down_primary_is_replaced_by_a_handoff(declared: bool) -> None:
    client, health = FakeClient(), FakeHealth({PRIMARIES[1]})
    writer, registry = make_writer(client, health)
    data = body_of(20 * KiB)
    outcome = await write(writer, data, size=size_if(declared, data))
    assert outcome.handoffs == ((PRIMARIES[1], HANDOFFS[0]),)
    assert outcome.missed == ()
    assert sorted(outcome.holders) == sorted([PRIMARIES[0], PRIMARIES[2], HANDOFFS[0]])
    assert PRIMARIES[1] not in {c["node"] for c in client.calls}
    assert client.received[HANDOFFS[0]] == data
    assert registry.get_sample_value("shardgate_gateway_handoff_writes_total") == 1


@BOTH_ENDS
async def test_unavailable_primary_before_first_chunk_goes_to_a_handoff(declared: bool) -> None:
    client, health = FakeClient({PRIMARIES[0]: "unavailable"}), FakeHealth()
    data = body_of(50 * KiB)
    outcome = await write(make_writer(client, health)[0], data, size=size_if(declared, data))
    assert outcome.handoffs == ((PRIMARIES[0], HANDOFFS[0]),)
    assert outcome.missed == ()
    assert len(outcome.holders) == 3 and PRIMARIES[0] not in outcome.holders
    assert health.marked == [PRIMARIES[0]]
    assert all(client.received[n] == data for n in outcome.holders)


@BOTH_ENDS
async def test_replica_failing_mid_body_is_dropped_and_missed(declared: bool) -> None:
    client = FakeClient({PRIMARIES[2]: "fail_mid"})
    writer, registry = make_writer(client)
    data = body_of(64 * KiB)
    outcome = await write(writer, data, size=size_if(declared, data))
    assert sorted(outcome.holders) == sorted(PRIMARIES[:2])
    assert outcome.missed == (PRIMARIES[2],)
    assert outcome.handoffs == ()
    assert (outcome.etag, outcome.size) == (md5(data), len(data))
    failures = registry.get_sample_value(
        "shardgate_gateway_replica_write_failures_total", {"node": PRIMARIES[2]}
    )
    assert failures == 1


@BOTH_ENDS
async def test_two_failures_withdraw_the_committed_replica(declared: bool) -> None:
    client = FakeClient({PRIMARIES[0]: "fail_end", PRIMARIES[2]: "fail_end"})
    writer, registry = make_writer(client)
    with pytest.raises(QuorumNotReached):
        await write(writer, body_of(16 * KiB), size=size_if(declared, body_of(16 * KiB)))
    assert client.committed == [PRIMARIES[1]]
    assert client.discarded == [PRIMARIES[1]]
    assert client.visible() == set()
    assert registry.get_sample_value("shardgate_gateway_quorum_failures_total", {"op": "put"}) == 1


@BOTH_ENDS
async def test_two_failures_mid_body_leave_nothing_visible(declared: bool) -> None:
    client = FakeClient({PRIMARIES[0]: "fail_mid", PRIMARIES[1]: "fail_mid"})
    with pytest.raises(QuorumNotReached):
        data = body_of(256 * KiB)
        await write(make_writer(client)[0], data, size=size_if(declared, data))
    assert client.visible() == set()


@BOTH_ENDS
@pytest.mark.parametrize("when", ["full_mid", "full_end"])
async def test_a_quorum_lost_to_full_disks_is_a_507(declared: bool, when: str) -> None:
    # An operator must free space or add nodes: a 507 naming the nodes, not a 503 to retry.
    client = FakeClient({PRIMARIES[0]: when, PRIMARIES[2]: when})
    data = body_of(256 * KiB)
    with pytest.raises(InsufficientStorage) as refused:
        await write(make_writer(client)[0], data, size=size_if(declared, data))
    assert refused.value.status == 507
    assert PRIMARIES[0] in refused.value.message and PRIMARIES[2] in refused.value.message
    assert client.visible() == set()


async def test_a_quorum_lost_to_a_full_disk_and_another_failure_stays_a_503() -> None:
    client = FakeClient({PRIMARIES[0]: "full_mid", PRIMARIES[2]: "fail_mid"})
    data = body_of(256 * KiB)
    with pytest.raises(QuorumNotReached):
        await write(make_writer(client)[0], data, size=len(data))
    assert client.visible() == set()


async def test_a_quorum_a_down_node_helped_lose_stays_a_503_though_a_disk_is_full() -> None:
    # The down node may be back on a retry: only a quorum lost to full disks alone is a 507.
    client = FakeClient({PRIMARIES[0]: "full_mid"})
    health = FakeHealth({PRIMARIES[1], *HANDOFFS})  # no handoff left to stand in for it
    data = body_of(256 * KiB)
    with pytest.raises(QuorumNotReached) as refused:
        await write(make_writer(client, health)[0], data, size=len(data))
    assert refused.value.status == 503
    assert client.visible() == set()


async def test_whole_body_without_its_trailer_commits_nothing_when_quorum_fails() -> None:
    data = body_of(12 * KiB)

    async def then_pause() -> AsyncIterator[bytes]:
        async for chunk in chunked(data):
            yield chunk
        await asyncio.sleep(0.05)  # the client's last read: replicas fail meanwhile

    client = FakeClient(
        {PRIMARIES[0]: "fail_mid", PRIMARIES[1]: "fail_mid", PRIMARIES[2]: "detached"}
    )
    writer, _ = make_writer(client)
    with pytest.raises(QuorumNotReached):
        await writer.write(RING, request(size=len(data)), then_pause(), 2)
    await asyncio.sleep(0.05)
    # It had every byte of the object, but the trailer with the md5 comes only once the quorum
    # is known to hold, so it could not commit: there is nothing to take back.
    assert client.committed == []
    assert client.visible() == set()


async def test_chunked_body_ending_like_a_trailer_commits_nothing_when_quorum_fails() -> None:
    """A body sent without a length whose last 48 bytes would pass for the trailer of the rest:
    the streams are cut, not ended, so no replica takes those bytes for the gateway's trailer."""
    inner = body_of(8 * KiB)
    sums = BlockSums()
    sums.update(inner)
    data = inner + encode_trailer(md5(inner), blocks_digest(sums.finish()))

    async def then_pause() -> AsyncIterator[bytes]:
        async for chunk in chunked(data):
            yield chunk
        await asyncio.sleep(0.05)  # the client's last read: replicas fail meanwhile

    client = FakeClient({PRIMARIES[0]: "fail_mid", PRIMARIES[1]: "fail_mid"})
    writer, _ = make_writer(client)
    with pytest.raises(QuorumNotReached):
        await writer.write(RING, request(), then_pause(), 2)
    await asyncio.sleep(0.05)
    assert client.committed == []


async def test_too_few_live_nodes_fails_before_streaming() -> None:
    client = FakeClient()
    health = FakeHealth({*PRIMARIES[:2], *HANDOFFS})
    with pytest.raises(QuorumNotReached):
        await write(make_writer(client, health)[0], body_of(KiB))
    assert client.calls == []


async def test_body_over_max_size_is_refused_and_nothing_committed() -> None:
    client = FakeClient()
    with pytest.raises(EntityTooLarge):
        await write(make_writer(client)[0], body_of(40 * KiB), max_size=40 * KiB - 1)
    assert client.committed == []


async def test_body_of_exactly_max_size_is_accepted() -> None:
    client = FakeClient()
    outcome = await write(make_writer(client)[0], body_of(40 * KiB), max_size=40 * KiB)
    assert outcome.size == 40 * KiB
    assert len(client.committed) == 3


async def test_replica_with_wrong_etag_is_discarded_and_not_a_holder() -> None:
    client = FakeClient({PRIMARIES[1]: "bad_etag"})
    data = body_of(10 * KiB)
    outcome = await write(make_writer(client)[0], data)
    assert PRIMARIES[1] not in outcome.holders
    assert sorted(outcome.holders) == sorted([PRIMARIES[0], PRIMARIES[2]])
    assert client.discarded == [PRIMARIES[1]]
    assert outcome.missed == (PRIMARIES[1],)
    assert outcome.etag == md5(data)


async def test_every_replica_gets_the_md5_and_block_sums_after_the_body() -> None:
    client = FakeClient()
    data = body_of(3 * MiB + 5)
    outcome = await write(make_writer(client)[0], data)
    assert outcome.etag == md5(data)
    assert sorted(outcome.holders) == sorted(PRIMARIES)
    assert all(client.received[n] == data for n in PRIMARIES)


async def test_replica_whose_bytes_differ_from_the_vouched_sums_is_not_a_holder() -> None:
    client = FakeClient({PRIMARIES[2]: "flip"})
    data = body_of(10 * KiB)
    outcome = await write(make_writer(client)[0], data)
    assert sorted(outcome.holders) == sorted(PRIMARIES[:2])
    assert outcome.missed == (PRIMARIES[2],)
    assert PRIMARIES[2] not in client.committed
    assert outcome.etag == md5(data)


@BOTH_ENDS
async def test_stalled_replica_is_dropped_and_the_write_succeeds(declared: bool) -> None:
    client = FakeClient({PRIMARIES[2]: "stall"})
    writer, _ = make_writer(client, stall=0.05)
    data = body_of(64 * KiB)
    try:
        outcome = await write(writer, data, size=size_if(declared, data))
    except asyncio.CancelledError:
        pytest.fail("a stalled replica turned the write into a CancelledError")
    assert sorted(outcome.holders) == sorted(PRIMARIES[:2])
    assert outcome.missed == (PRIMARIES[2],)


async def test_memory_stays_bounded_for_a_large_body() -> None:
    chunk, total = 256 * KiB, 64 * MiB
    client = FakeClient(keep=False)
    writer, _ = make_writer(client)

    async def body() -> AsyncIterator[bytes]:
        for i in range(total // chunk):
            yield bytes([i % 256]) * chunk  # a fresh buffer each time, as a socket gives

    tracemalloc.start()
    try:
        outcome = await writer.write(RING, request(), body(), 2)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert outcome.size == total
    assert len(client.committed) == 3
    assert peak < 8 * MiB, f"peak {peak / MiB:.1f} MiB: the writer buffers the object"
