"""Fakes for gateway.replicated_write's unit tests: node clients that consume bodies as nodes
do (or misbehave as asked), a repair log, and a writer wired to them."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterable, AsyncIterator, Mapping, Sequence
from typing import Any, cast

from gateway_kit import PART, RING, FakeHealth
from prometheus_client import CollectorRegistry

from gateway.catalog import Repair
from gateway.metrics import GatewayMetrics
from gateway.node_health import NodeHealth
from gateway.nodes import NodeClient, NodeFailed, NodeUnavailable, ObjectAddress, PutAck
from gateway.replicated_write import ReplicatedWriter, WriteOutcome, WriteRequest
from ring import Node
from shardgate.block_sums import BlockSums, blocks_digest
from shardgate.versions import format_version
from shardgate.vouch_trailer import TRAILER_SIZE, TrailerSplit

KiB, MiB = 1024, 1024 * 1024
VERSION = format_version(1_700_000_000_000_000_000)


class FakeClient:
    """Consumes bodies like a node would; `modes` makes chosen nodes misbehave (the "late"
    ones wait for `gate` before they answer)."""

    def __init__(self, modes: Mapping[str, str] | None = None, *, keep: bool = True) -> None:
        self.modes = dict(modes or {})
        self.keep = keep
        self.received: dict[str, bytes] = {}
        self.committed: list[str] = []
        self.discarded: list[str] = []
        self.calls: list[dict[str, Any]] = []
        self.dropped: list[str] = []  # bodies that had not ended when the node answered
        self.gate = asyncio.Event()  # what "late" replicas wait for, with every byte in hand

    async def put(
        self,
        node: Node,
        addr: ObjectAddress,
        version: str,
        body: AsyncIterable[bytes],
        *,
        size: int | None,
        content_type: str,
        user_meta: Mapping[str, str],
        create_only: bool = False,
    ) -> PutAck:
        mode = self.modes.get(node.id, "ok")
        self.calls.append({"node": node.id, "size": size, "type": content_type, "meta": user_meta})
        if mode == "unavailable":
            raise NodeUnavailable(node, "connection refused")
        if mode == "stall":
            await asyncio.Event().wait()
        if mode == "detached":
            # A real node commits once it has Content-Length bytes, even if the gateway has gone.
            consuming = asyncio.ensure_future(self._consume_until(node, body, size))
            return await asyncio.shield(consuming)
        if mode == "eager":
            return await self._answer_at_last_byte(node, body, size)
        split, sums, total, kept, chunks = TrailerSplit(), BlockSums(), 0, bytearray(), 0
        async for chunk in body:
            chunks += 1
            if mode == "fail_mid" and chunks == 2:
                raise NodeFailed(node, "connection reset mid-body")
            if mode == "full_mid" and chunks == 2:
                raise NodeFailed(node, "PUT answered 507: no space left", 507)
            data = split.feed(chunk)
            if mode == "flip" and data and not total:
                data = bytes([data[0] ^ 1]) + data[1:]  # damaged on the way in
            sums.update(data)
            total += len(data)
            if self.keep:
                kept += data
        if mode == "fail_end":
            raise NodeFailed(node, "answered 500 at commit")
        if mode == "full_end":
            raise NodeFailed(node, "PUT answered 507: no space left", 507)
        rest, trailer = split.finish()
        sums.update(rest)
        total += len(rest)
        if self.keep:
            kept += rest
        if trailer is None or trailer[1] != blocks_digest(sums.finish()):
            raise NodeFailed(node, "BadDigest: the block sums differ from the vouched ones", 400)
        if mode.startswith("late"):
            await self.gate.wait()  # a slow fsync
            if mode == "late_fail":
                raise NodeFailed(node, "answered 500 at commit")
        self.received[node.id] = bytes(kept)
        self.committed.append(node.id)
        etag = "0" * 32 if mode in ("bad_etag", "late_bad_etag") else trailer[0]
        return PutAck(node.id, etag=etag, size=total)

    async def _consume_until(
        self, node: Node, body: AsyncIterable[bytes], size: int | None
    ) -> PutAck:
        got, split = 0, TrailerSplit()
        async for chunk in body:
            got += len(chunk)
            split.feed(chunk)
            if size is not None and got >= size + TRAILER_SIZE:
                break
        _, trailer = split.finish()
        if (size is not None and got < size + TRAILER_SIZE) or trailer is None:
            raise NodeFailed(node, "incomplete body", 400)
        self.committed.append(node.id)
        return PutAck(node.id, etag=trailer[0], size=size or 0)

    async def _answer_at_last_byte(
        self, node: Node, body: AsyncIterable[bytes], size: int | None
    ) -> PutAck:
        """A node answers once it has every declared byte; a body that has not ended by then
        keeps the client from reading that answer, and cost the connection with aiohttp's."""
        assert size is not None
        answered: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

        async def send() -> None:
            received = bytearray()
            async for chunk in body:
                received += chunk
                if len(received) == size + TRAILER_SIZE:
                    answered.set_result(bytes(received))

        sending = asyncio.ensure_future(send())
        received = await answered
        if not sending.done():
            self.dropped.append(node.id)
            sending.cancel()
        split = TrailerSplit()
        data = split.feed(received)
        rest, trailer = split.finish()
        assert trailer is not None
        self.received[node.id] = data + rest
        self.committed.append(node.id)
        return PutAck(node.id, etag=trailer[0], size=size)

    async def discard(self, node: Node, addr: ObjectAddress, version: str) -> bool:
        self.discarded.append(node.id)
        return True

    def visible(self) -> set[str]:
        return set(self.committed) - set(self.discarded)


class FakeRepairs:
    def __init__(self) -> None:
        self.added: list[Repair] = []

    async def add_repairs(self, repairs: Sequence[Repair]) -> None:
        self.added.extend(repairs)


def make_writer(
    client: FakeClient,
    health: FakeHealth | None = None,
    *,
    stall: float = 10.0,
    late_limit: int = 0,
    repairs: FakeRepairs | None = None,
) -> tuple[ReplicatedWriter, CollectorRegistry]:
    registry = CollectorRegistry()
    writer = ReplicatedWriter(
        cast(NodeClient, client),
        cast(NodeHealth, health or FakeHealth()),
        GatewayMetrics.create(registry),
        stall_timeout=stall,
        repairs=repairs or FakeRepairs(),
        late_limit=late_limit,
    )
    return writer, registry


def request(max_size: int = 1 << 40, size: int | None = None) -> WriteRequest:
    addr = ObjectAddress(PART, "0" * 32, "bkt", "photos/cat.jpg")
    return WriteRequest(addr, VERSION, "image/jpeg", {"owner": "ann"}, size, max_size)


async def chunked(data: bytes, chunk: int = 4 * KiB) -> AsyncIterator[bytes]:
    for i in range(0, len(data), chunk):
        yield data[i : i + chunk]


def body_of(n: int) -> bytes:
    return bytes(i % 251 for i in range(n))


async def write(
    writer: ReplicatedWriter, data: bytes, *, need: int = 2, **req: Any
) -> WriteOutcome:
    return await writer.write(RING, request(**req), chunked(data), need)


def md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()
