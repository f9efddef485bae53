"""EarlyCopies without a server: every live peer gets every chunk, but the last one and the
body's end only at `finish`; a peer that fails or stalls is dropped without holding the upload
up; `close` aborts the copies still going, so no peer sees a whole body."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from ring import Node, RingSpec, RingWatch, save_ring_file
from storage_node.early_copies import EarlyCopies, early_copy_targets
from storage_node.peers import PeerClient
from storage_node.records import PendingUpload

UPLOAD = PendingUpload(
    upload_id="a" * 24,
    bucket="b",
    key="k",
    partition=3,
    obj_hash="c" * 32,
    size=0,
    etag="",
    sha256=None,
    content_type="application/octet-stream",
    head="",
    received=0.0,
    commit_by=1e10,
)
NODES = [Node(id=f"n{i}", url=f"http://n{i}") for i in range(1, 4)]


class FakePeers(PeerClient):
    """Peers by URL: 'ok' takes everything, 'refuse' answers 507 at the end, 'down' fails
    before reading, 'stall' stops reading after its first chunk, 'eager' answers at the
    declared length's last byte while the body is sent from a task of its own, as aiohttp does
    (a body still being sent then costs the connection: `dropped`)."""

    def __init__(self, behaviour: dict[str, str]) -> None:
        self.behaviour = behaviour
        self.got: dict[str, bytes] = {}
        self.ended: set[str] = set()
        self.aborted: set[str] = set()
        self.lengths: dict[str, int | None] = {}
        self.dropped: set[str] = set()

    async def copy_upload(
        self,
        peer_url: str,
        upload: PendingUpload,
        source: str,
        chunks: AsyncIterator[bytes],
        length: int | None = None,
    ) -> tuple[int, Any]:
        assert (upload, source) == (UPLOAD, "n1")
        self.lengths[peer_url] = length
        how = self.behaviour[peer_url]
        if how == "down":
            raise ConnectionRefusedError(peer_url)
        self.got[peer_url] = b""
        if how == "eager":
            return await self._answer_at_last_byte(peer_url, chunks, length)
        try:
            async for chunk in chunks:
                self.got[peer_url] += chunk
                if how == "stall":
                    await asyncio.sleep(3600)
        except asyncio.CancelledError:
            self.aborted.add(peer_url)
            raise
        self.ended.add(peer_url)
        return (507, {"error": "full"}) if how == "refuse" else (201, {"size": 0})

    async def _answer_at_last_byte(
        self, peer_url: str, chunks: AsyncIterator[bytes], length: int | None
    ) -> tuple[int, Any]:
        answered: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        async def send() -> None:
            async for chunk in chunks:
                self.got[peer_url] += chunk
                if len(self.got[peer_url]) == length:
                    answered.set_result(None)

        sending = asyncio.ensure_future(send())
        await answered
        if not sending.done():
            self.dropped.add(peer_url)
            sending.cancel()
        self.ended.add(peer_url)
        return 201, {"size": length}


def _started(
    behaviour: dict[str, str], stall: float = 5, length: int | None = None
) -> tuple[FakePeers, EarlyCopies]:
    peers = FakePeers(behaviour)
    copies = EarlyCopies(peers, "n1", UPLOAD, stall=stall, length=length)
    copies.start([node for node in NODES if node.url in behaviour])
    return peers, copies


async def _send(copies: EarlyCopies, chunks: int) -> None:
    for i in range(chunks):
        await copies.feed(bytes([i]) * 1000)


async def test_every_peer_gets_every_chunk_but_the_last_and_the_end_only_at_finish() -> None:
    peers, copies = _started({"http://n2": "ok", "http://n3": "ok"}, length=20_000)
    await _send(copies, 20)
    await asyncio.sleep(0.05)
    # All but the last chunk, and no end: a refused upload can still abort, even where the
    # peer was told the length and would take the last byte for the body's end.
    all_but_last = b"".join(bytes([i]) * 1000 for i in range(19))
    assert peers.got == {"http://n2": all_but_last, "http://n3": all_but_last}
    assert peers.ended == set()
    assert await copies.finish() == ("n2", "n3")
    expected = all_but_last + bytes([19]) * 1000
    assert peers.got == {"http://n2": expected, "http://n3": expected}
    assert peers.lengths == {"http://n2": 20_000, "http://n3": 20_000}
    assert copies.failed == []
    await copies.close()


async def test_a_peer_that_fails_or_refuses_is_dropped_and_the_rest_go_on() -> None:
    _, copies = _started({"http://n1": "down", "http://n2": "ok", "http://n3": "refuse"})
    await _send(copies, 10)
    assert await copies.finish() == ("n2",)
    assert [node for node, _ in copies.failed] == ["n1", "n3"]
    assert "ConnectionRefusedError" in copies.failed[0][1]
    assert "507" in copies.failed[1][1]
    await copies.close()


async def test_a_stalled_peer_is_dropped_after_the_stall_timeout() -> None:
    peers, copies = _started({"http://n2": "stall", "http://n3": "ok"}, stall=0.3)
    started = time.monotonic()
    await _send(copies, 30)
    assert time.monotonic() - started < 5  # held up once, for the stall timeout, not per chunk
    assert await copies.finish() == ("n3",)
    assert copies.failed[0][0] == "n2" and "took no data" in copies.failed[0][1]
    await copies.close()
    assert peers.aborted == {"http://n2"} and peers.ended == {"http://n3"}


async def test_close_before_finish_aborts_every_copy() -> None:
    peers, copies = _started({"http://n2": "ok", "http://n3": "ok"})
    await _send(copies, 3)
    await asyncio.sleep(0.05)
    await copies.close()
    assert peers.ended == set()
    assert peers.aborted == {"http://n2", "http://n3"}
    assert peers.got["http://n2"] == bytes([0]) * 1000 + bytes([1]) * 1000  # never the last


async def test_targets_are_the_other_primaries(tmp_path: Path) -> None:
    path = tmp_path / "ring.json"
    save_ring_file(path, RingSpec(epoch=1, partition_power=4, replicas=3, nodes=tuple(NODES)))
    rings = RingWatch(path)
    for partition in range(16):
        targets = await early_copy_targets(rings, "n2", partition)
        assert sorted(node.id for node in targets) == ["n1", "n3"]


async def test_a_node_without_a_ring_makes_no_early_copies() -> None:
    assert await early_copy_targets(None, "n1", 0) == []


async def test_a_body_longer_than_its_declared_length_drops_the_copies_before_they_are_whole() -> (
    None
):
    peers, copies = _started({"http://n2": "ok", "http://n3": "ok"}, length=2_500)
    await _send(copies, 4)
    assert await copies.finish() == ()
    assert {node for node, _ in copies.failed} == {"n2", "n3"}
    assert "runs past its declared 2500 bytes" in copies.failed[0][1]
    await copies.close()
    assert peers.ended == set()
    assert all(len(got) < 2_500 for got in peers.got.values())


async def test_a_body_shorter_than_its_declared_length_never_sends_its_last_chunk() -> None:
    peers, copies = _started({"http://n2": "ok", "http://n3": "ok"}, length=5_000)
    await _send(copies, 3)
    assert await copies.finish() == ()
    assert "is 3000 bytes, not its declared 5000" in copies.failed[0][1]
    await copies.close()
    assert peers.ended == set()
    assert all(len(got) == 2_000 for got in peers.got.values())


async def test_a_body_of_declared_length_ends_with_its_last_byte() -> None:
    # The peer answers once it has every byte; aiohttp drops the connection of a request whose
    # body has not ended by then, so the body must not wait for an end marker.
    peers, copies = _started({"http://n2": "eager", "http://n3": "eager"}, length=5_000)
    await _send(copies, 5)
    assert await copies.finish() == ("n2", "n3")
    assert copies.failed == []
    assert peers.dropped == set()
    expected = b"".join(bytes([i]) * 1000 for i in range(5))
    assert peers.got == {"http://n2": expected, "http://n3": expected}
    await copies.close()
