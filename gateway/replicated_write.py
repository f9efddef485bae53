"""Streaming one body to all replicas at once, chunk by chunk, with handoffs and an explicit quorum.

Each replica has a small queue; a chunk is handed to every live replica before the next is
read from the client, so memory is chunk size x queue depth x replicas per upload whatever
the object's size. A replica that fails before taking its first chunk is replaced by the
next handoff; one that fails later is dropped, and the write goes on while a quorum is left.
A write that ends below quorum withdraws the versions it did commit, so it never shows.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import AsyncIterable, Callable, Mapping
from dataclasses import dataclass

from gateway.catalog import RepairLog
from gateway.errors import (
    BadDigest,
    EntityTooLarge,
    IncompleteBody,
    InsufficientStorage,
    PreconditionFailed,
    QuorumNotReached,
    ReplicaMismatch,
)
from gateway.fanout import fan_out
from gateway.late_replicas import LateReplicas, LateWrite
from gateway.metrics import GatewayMetrics
from gateway.node_health import NodeHealth
from gateway.nodes import NodeClient, NodeError, NodeUnavailable, ObjectAddress, PutAck
from gateway.replica_slot import Feed, Slot, need_quorum, raise_if_full
from ring import Node, Ring
from shardgate.block_sums import BlockSums
from shardgate.vouch_trailer import encode_trailer, vouched_length

INLINE_HASH_BYTES = 32 * 1024  # md5 and CRC-32C of this much took 45 us here: less than a hop

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WriteRequest:
    addr: ObjectAddress
    version: str
    content_type: str
    user_meta: Mapping[str, str]
    size: int | None
    max_size: int
    md5: str | None = None  # what the client says the md5 is (hex)
    sha256: str | None = None  # what the client says the sha256 is (hex)
    check_head: Callable[[bytes], None] | None = None  # sees the first chunk before any node
    create_only: bool = False  # nodes refuse to commit over a live version


@dataclass(frozen=True)
class WriteOutcome:
    etag: str
    size: int
    sha256: str | None
    holders: tuple[str, ...]
    missed: tuple[str, ...]
    handoffs: tuple[tuple[str, str], ...]  # (primary it stands in for, handoff node)


class ReplicatedWriter:
    def __init__(
        self,
        client: NodeClient,
        health: NodeHealth,
        metrics: GatewayMetrics,
        *,
        stall_timeout: float,
        repairs: RepairLog,
        late_limit: int = 0,
        queue_depth: int = 2,
    ) -> None:
        """Up to about `late_limit` replica writes may finish after their upload is answered
        (none by default: every upload waits for all its replicas)."""
        self._client = client
        self._health = health
        self._metrics = metrics
        self._stall = stall_timeout
        self._depth = queue_depth
        self._late = LateReplicas(
            repairs, metrics, limit=late_limit, deadline=stall_timeout, discard=self._discard
        )

    async def write(
        self, ring: Ring, req: WriteRequest, body: AsyncIterable[bytes], need: int
    ) -> WriteOutcome:
        partition = req.addr.partition
        length = vouched_length(req.size)
        spares = [node for node in ring.handoffs(partition) if self._health.is_up(node.id)]
        slots: list[Slot] = []
        missed: list[str] = []
        for primary in ring.primaries(partition):
            if self._health.is_up(primary.id):
                slots.append(Slot(primary, primary, Feed(self._depth, length)))
            elif spares:
                slots.append(Slot(primary, spares.pop(0), Feed(self._depth, length)))
                self._metrics.handoff_writes.inc()
            else:
                missed.append(primary.id)
        if len(slots) < need:
            self._metrics.quorum_failures.labels("put").inc()
            raise QuorumNotReached(
                f"only {len(slots)} replica nodes are up; {need} must take the write"
            )

        async def stream(slot: Slot) -> PutAck:
            slot.task = asyncio.current_task()
            return await self._stream(slot, req, spares)

        # A create-only write waits for every replica: any one may say another create won.
        early = self._late.room() and not req.create_only
        fan = asyncio.ensure_future(fan_out(slots, stream, need, timeout=None, early=early))
        try:
            etag, sha256, total, last = await self._broadcast(body, slots, need, req, len(missed))
        except BaseException:
            # No replica has the trailer, so none can commit: cut every stream rather than end
            # it, or a body sent chunked could end on bytes that pass for a trailer.
            fan.cancel()
            await asyncio.gather(fan, return_exceptions=True)
            raise
        try:
            await self._offer(last, slots, need, len(missed))
            await self._end(slots)
            result = await fan
        except (QuorumNotReached, InsufficientStorage):
            # Replicas already holding the whole body and its trailer commit whatever happens
            # here, so cancelling them would leave a version nobody withdraws: end every stream,
            # then take back whatever committed.
            await self._end(slots)
            ended = await fan
            await ended.finish()
            await self.withdraw(
                req.addr, req.version, [s.node for s, a in ended.ok if not a.superseded]
            )
            raise
        except BaseException:
            fan.cancel()
            await asyncio.gather(fan, return_exceptions=True)
            if not fan.cancelled() and fan.exception() is None:
                _cut(fan.result().running)  # answered early, then cancelled: follow nobody
            raise

        try:
            # A replica still running may have been cut since, its queue full for too long: it
            # ends at once, and must count as missed, not as a holder.
            if cut := [task for slot, task in result.running if slot.feed.closed]:
                await asyncio.wait(cut)
            result.collect()
            if result.running and not all(ack.holds(etag, total) for _, ack in result.ok):
                await result.finish()  # a replica took other bytes: settle all before answering
        except BaseException:
            _cut(result.running)
            raise
        if any(isinstance(exc, NodeError) and exc.status == 412 for _, exc in result.failed):
            # Another create won on some replica: this one must leave no trace anywhere.
            await self.withdraw(
                req.addr, req.version, [s.node for s, a in result.ok if not a.superseded]
            )
            raise PreconditionFailed("the object was created by another upload first")
        good: list[tuple[Slot, PutAck]] = []
        for slot, ack in result.ok:
            if ack.holds(etag, total):
                good.append((slot, ack))
            else:
                log.error(
                    "replica %s stored md5 %s size %d; sent %s size %d",
                    slot.node.id,
                    ack.etag,
                    ack.size,
                    etag,
                    total,
                )
                await self.withdraw(req.addr, req.version, [slot.node])
        if len(good) < need:
            await self.withdraw(
                req.addr, req.version, [s.node for s, a in good if not a.superseded]
            )
            self._metrics.quorum_failures.labels("put").inc()
            if len(good) < len(result.ok):
                raise ReplicaMismatch("replicas received different bytes; the write was withdrawn")
            raise_if_full(slots, len(missed))
            raise QuorumNotReached(
                f"{len(good)} of {len(slots)} replica writes succeeded; {need} needed"
            )
        # A replica still finishing has been handed every byte and the trailer: it counts as a
        # holder, and is queued for repair only if it fails (a read that finds it behind tries
        # the next).
        for slot, task in result.running:
            late = LateWrite(req.addr, req.version, slot.node, slot.primary.id, etag, total)
            self._late.follow(late, task)
        kept = {id(slot) for slot, _ in (*good, *result.running)}
        holding = [slot for slot in slots if id(slot) in kept]  # in the partition's order
        held = {slot.primary.id for slot in holding}
        return WriteOutcome(
            etag=etag,
            size=total,
            sha256=sha256,
            holders=tuple(slot.node.id for slot in holding),
            missed=(*missed, *(slot.primary.id for slot in slots if slot.primary.id not in held)),
            handoffs=tuple(
                (slot.primary.id, slot.node.id) for slot in holding if slot.node != slot.primary
            ),
        )

    async def _stream(self, slot: Slot, req: WriteRequest, spares: list[Node]) -> PutAck:
        try:
            while True:
                try:
                    return await self._client.put(
                        slot.node,
                        req.addr,
                        req.version,
                        slot.feed.chunks(),
                        size=req.size,
                        content_type=req.content_type,
                        user_meta=req.user_meta,
                        create_only=req.create_only,
                    )
                except NodeUnavailable as exc:
                    self._health.mark_down(slot.node.id, str(exc))
                    # Only a replica that has not consumed a chunk can be handed to another node.
                    if slot.feed.started or not spares:
                        raise
                    slot.node = spares.pop(0)
                    self._metrics.handoff_writes.inc()
        except BaseException as exc:
            slot.full = isinstance(exc, NodeError) and exc.status == 507
            slot.feed.close()
            if isinstance(exc, NodeError):
                self._metrics.replica_write_failures.labels(slot.node.id).inc()
            raise

    async def _broadcast(
        self,
        body: AsyncIterable[bytes],
        slots: list[Slot],
        need: int,
        req: WriteRequest,
        missed: int,
    ) -> tuple[str, str | None, int, bytes]:
        """Hand every chunk but the last to every live replica; returns the md5, sha256 and
        size sent, and the last chunk with the trailer that vouches for them appended.

        The last chunk is held back until the digests are checked: replicas cannot finish, and
        so cannot commit, a body whose digest turns out wrong.
        """
        loop = asyncio.get_running_loop()
        md5 = hashlib.md5(usedforsecurity=False)
        sha = hashlib.sha256() if req.sha256 else None
        sums = BlockSums(keep=False)  # memory must not grow with the object
        total = 0
        held: bytes | None = None
        async for chunk in body:
            if total == 0 and req.check_head is not None:
                req.check_head(chunk)
            total += len(chunk)
            if total > req.max_size:
                raise EntityTooLarge(f"object exceeds the {req.max_size}-byte limit")
            if len(chunk) <= INLINE_HASH_BYTES:
                _update(md5, sha, sums, chunk)  # cheaper here than a hop to a thread and back
                hashing = None
            else:
                # hashlib releases the GIL: the digests run on another core while replicas take
                # a chunk.
                hashing = loop.run_in_executor(None, _update, md5, sha, sums, chunk)
            if held is not None:
                await self._offer(held, slots, need, missed)
            if hashing is not None:
                await hashing
            held = chunk
            self._metrics.received_bytes.inc(len(chunk))
        if total == 0 and req.check_head is not None:
            req.check_head(b"")
        if req.size is not None and total != req.size:
            # Each replica's body ends at its declared length: a short one would never end.
            raise IncompleteBody(f"the body is {total} bytes, not its declared {req.size}")
        etag, sha256 = md5.hexdigest(), sha.hexdigest() if sha else None
        if req.md5 is not None and req.md5 != etag:
            raise BadDigest("the body's md5 does not match Content-MD5")
        if req.sha256 is not None and req.sha256 != sha256:
            raise BadDigest("the body's sha256 does not match X-Checksum-SHA256")
        # The replicas hash no md5: each checks its block sums against these and keeps the md5.
        # The trailer goes with the last chunk: one write to each replica rather than two.
        trailer = encode_trailer(etag, sums.digest())
        # Replicas that fail while the client sends its last bytes must leave no quorum to
        # commit: checked here, the streams are cut before any replica has the trailer.
        need_quorum(slots, need, missed)
        return etag, sha256, total, trailer if held is None else held + trailer

    async def _offer(self, chunk: bytes, slots: list[Slot], need: int, missed: int) -> None:
        for slot in slots:
            await slot.offer(chunk, self._stall)
        need_quorum(slots, need, missed)

    async def _end(self, slots: list[Slot]) -> None:
        """End each body of undeclared length; one of declared length ended with its last byte."""
        for slot in slots:
            if slot.feed.length is None:
                await slot.offer(None, self._stall)

    async def withdraw(self, addr: ObjectAddress, version: str, nodes: list[Node]) -> None:
        """Take back a version that must not show, once its late replica writes are done; a
        replica that cannot be reached keeps it until the sweeper finds it absent from the
        catalog."""
        await self._late.settle(addr, version)
        await self._discard(addr, version, nodes)

    def writing(self, bucket: str, key: str, version: str) -> frozenset[str]:
        """The nodes still writing this version after its upload was answered."""
        return self._late.writing(bucket, key, version)

    async def close(self, grace: float) -> None:
        """Give late replica writes `grace` seconds to end, then cut them (and repair them)."""
        await self._late.close(grace)

    async def _discard(self, addr: ObjectAddress, version: str, nodes: list[Node]) -> None:
        async def discard(node: Node) -> bool:
            return await self._client.discard(node, addr, version)

        result = await fan_out(nodes, discard, need=0, timeout=self._stall)
        for node, exc in result.failed:
            log.warning("could not withdraw %s from %s: %s", version, node.id, exc)


def _cut(running: list[tuple[Slot, asyncio.Future[PutAck]]]) -> None:
    for _, task in running:
        task.cancel()
        task.add_done_callback(_retrieve)  # one that failed first must not log as unretrieved


def _retrieve(task: asyncio.Future[PutAck]) -> None:
    if not task.cancelled():
        task.exception()


def _update(md5: hashlib._Hash, sha: hashlib._Hash | None, sums: BlockSums, chunk: bytes) -> None:
    md5.update(chunk)
    sums.update(chunk)
    if sha is not None:
        sha.update(chunk)
