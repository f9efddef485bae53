"""Uploads answered once W replicas acknowledge (gateway.late_replicas): the last replica
finishes after the answer, and one that fails then is withdrawn where it must be and queued for
repair. Fake node clients: no server, no sockets."""

from __future__ import annotations

import asyncio
import dataclasses

from gateway_kit import PRIMARIES, RING
from prometheus_client import CollectorRegistry
from writer_kit import (
    VERSION,
    FakeClient,
    FakeRepairs,
    KiB,
    body_of,
    chunked,
    make_writer,
    md5,
    request,
    write,
)

from gateway.catalog import Repair

LIMIT = 8


def gauge(registry: CollectorRegistry, name: str) -> float:
    return registry.get_sample_value(name) or 0.0


async def test_the_answer_comes_at_the_quorum_and_the_last_replica_finishes_after() -> None:
    client, repairs = FakeClient({PRIMARIES[2]: "late"}), FakeRepairs()
    writer, registry = make_writer(client, late_limit=LIMIT, repairs=repairs)
    data = body_of(40 * KiB + 3)
    outcome = await write(writer, data, size=len(data))
    assert sorted(client.committed) == sorted(PRIMARIES[:2]), "answered before the third"
    # It holds every byte and the trailer already, so it is named a holder.
    assert sorted(outcome.holders) == sorted(PRIMARIES) and outcome.missed == ()
    assert gauge(registry, "shardgate_gateway_late_replica_writes") == 1
    # Reads ask it last until it is done.
    assert writer.writing("bkt", "photos/cat.jpg", VERSION) == {PRIMARIES[2]}
    assert writer.writing("bkt", "photos/cat.jpg", "0" * 20) == set()
    client.gate.set()
    await writer.close(grace=5)
    assert writer.writing("bkt", "photos/cat.jpg", VERSION) == set()
    assert client.received[PRIMARIES[2]] == data
    assert sorted(client.committed) == sorted(PRIMARIES)
    assert repairs.added == [] and client.discarded == []
    assert gauge(registry, "shardgate_gateway_late_replica_writes") == 0
    assert gauge(registry, "shardgate_gateway_late_replica_failures_total") == 0


async def test_a_late_replica_that_fails_is_queued_for_repair() -> None:
    client, repairs = FakeClient({PRIMARIES[0]: "late_fail"}), FakeRepairs()
    writer, registry = make_writer(client, late_limit=LIMIT, repairs=repairs)
    data = body_of(9 * KiB)
    outcome = await write(writer, data)
    assert outcome.etag == md5(data)
    client.gate.set()
    await writer.close(grace=5)
    assert repairs.added == [Repair("bkt", "photos/cat.jpg", VERSION, PRIMARIES[0], "late")]
    assert gauge(registry, "shardgate_gateway_late_replica_failures_total") == 1
    assert gauge(registry, "shardgate_gateway_repairs_queued_total") == 1
    assert PRIMARIES[0] not in client.committed


async def test_a_late_replica_that_stored_other_bytes_is_withdrawn_and_repaired() -> None:
    client, repairs = FakeClient({PRIMARIES[1]: "late_bad_etag"}), FakeRepairs()
    writer, _ = make_writer(client, late_limit=LIMIT, repairs=repairs)
    await write(writer, body_of(5 * KiB))
    client.gate.set()
    await writer.close(grace=5)
    assert client.discarded == [PRIMARIES[1]]
    assert [(r.node_id, r.reason) for r in repairs.added] == [(PRIMARIES[1], "late")]


async def test_shutting_down_cuts_late_writes_and_queues_their_repair() -> None:
    client, repairs = FakeClient({PRIMARIES[2]: "late"}), FakeRepairs()
    writer, registry = make_writer(client, late_limit=LIMIT, repairs=repairs)
    await write(writer, body_of(5 * KiB))
    await writer.close(grace=0.01)  # the gate never opens: a node that hangs
    assert [r.node_id for r in repairs.added] == [PRIMARIES[2]]
    assert PRIMARIES[2] not in client.committed
    assert gauge(registry, "shardgate_gateway_late_replica_writes") == 0


async def test_past_the_limit_an_upload_waits_for_every_replica() -> None:
    client = FakeClient({PRIMARIES[2]: "late"})
    writer, _ = make_writer(client, late_limit=1)
    await write(writer, body_of(5 * KiB))  # takes the one place
    second = asyncio.ensure_future(write(writer, body_of(6 * KiB)))
    await asyncio.sleep(0.05)
    assert not second.done(), "no room for another late replica: it must wait for all three"
    client.gate.set()
    outcome = await second
    assert sorted(outcome.holders) == sorted(PRIMARIES)
    await writer.close(grace=5)
    assert client.committed.count(PRIMARIES[2]) == 2


async def test_a_create_only_upload_waits_for_every_replica() -> None:
    client = FakeClient({PRIMARIES[2]: "late"})
    writer, _ = make_writer(client, late_limit=LIMIT)
    data = body_of(5 * KiB)
    req = dataclasses.replace(request(size=len(data)), create_only=True)
    waiting = asyncio.ensure_future(writer.write(RING, req, chunked(data), 2))
    await asyncio.sleep(0.05)
    assert not waiting.done(), "any replica may refuse a create-only write: it must hear all"
    client.gate.set()
    await waiting
    assert sorted(client.committed) == sorted(PRIMARIES)


async def test_other_bytes_among_the_first_answers_settle_every_replica_first() -> None:
    client = FakeClient({PRIMARIES[0]: "bad_etag", PRIMARIES[2]: "late"})
    writer, _ = make_writer(client, late_limit=LIMIT)
    data = body_of(7 * KiB)
    waiting = asyncio.ensure_future(write(writer, data, size=len(data)))
    await asyncio.sleep(0.05)
    assert not waiting.done(), "one of two answers is bad: the third decides"
    client.gate.set()
    outcome = await waiting
    assert sorted(outcome.holders) == sorted(PRIMARIES[1:])
    assert client.discarded == [PRIMARIES[0]]
    assert outcome.etag == md5(data)


async def test_a_late_replica_that_never_answers_is_cut_at_its_deadline() -> None:
    client, repairs = FakeClient({PRIMARIES[2]: "late"}), FakeRepairs()
    writer, registry = make_writer(client, stall=0.05, late_limit=LIMIT, repairs=repairs)
    await write(writer, body_of(5 * KiB))
    for _ in range(100):
        if repairs.added:
            break
        await asyncio.sleep(0.01)
    assert [(r.node_id, r.reason) for r in repairs.added] == [(PRIMARIES[2], "late")]
    assert gauge(registry, "shardgate_gateway_late_replica_writes") == 0
    assert PRIMARIES[2] not in client.committed


async def test_a_withdrawal_waits_for_the_late_replica_and_reaches_it() -> None:
    client = FakeClient({PRIMARIES[2]: "late"})
    writer, _ = make_writer(client, late_limit=LIMIT)
    outcome = await write(writer, body_of(5 * KiB))
    nodes = [node for node in RING.nodes if node.id in outcome.holders]
    withdrawing = asyncio.ensure_future(writer.withdraw(request().addr, VERSION, nodes))
    await asyncio.sleep(0.05)
    assert not withdrawing.done(), "a discard sent now would land before the late commit"
    client.gate.set()
    await withdrawing
    assert sorted(client.discarded) == sorted(PRIMARIES)
    assert client.visible() == set()


async def test_holders_keep_the_partitions_order_whichever_replica_is_late() -> None:
    client = FakeClient({PRIMARIES[0]: "late"})
    writer, _ = make_writer(client, late_limit=LIMIT)
    outcome = await write(writer, body_of(5 * KiB))
    assert outcome.holders == tuple(PRIMARIES)  # a read asks them in this order
    client.gate.set()
    await writer.close(grace=5)


async def test_a_replica_cut_on_its_full_queue_after_the_quorum_is_not_named_a_holder() -> None:
    # Two chunks fill the stalled replica's queue; the third (with the trailer) waits on it
    # while the other two commit, so the quorum comes first and the stall cuts it after.
    client = FakeClient({PRIMARIES[2]: "stall"})
    writer, _ = make_writer(client, stall=0.2, late_limit=LIMIT)
    data = body_of(12 * KiB)
    outcome = await write(writer, data, size=len(data))
    assert outcome.holders == tuple(PRIMARIES[:2])
    assert outcome.missed == (PRIMARIES[2],)
    await writer.close(grace=5)
