"""Replica writes that finish after their upload was answered: DESIGN.md's write path answers
once W replicas acknowledge. One that fails, stores other bytes or outlives its deadline is cut
and queued for repair, so the object reaches N copies all the same."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from gateway.catalog import Repair, RepairLog
from gateway.metrics import GatewayMetrics
from gateway.nodes import ObjectAddress, PutAck
from ring import Node

log = logging.getLogger(__name__)
Discard = Callable[[ObjectAddress, str, list[Node]], Awaitable[None]]


@dataclass(frozen=True)
class LateWrite:
    addr: ObjectAddress
    version: str
    node: Node
    primary: str  # the primary the node stands for: itself, or the one a handoff replaces
    etag: str
    size: int


class LateReplicas:
    """The replica writes still running after their answers, each followed to its end."""

    def __init__(
        self,
        repairs: RepairLog,
        metrics: GatewayMetrics,
        *,
        limit: int,
        deadline: float,
        discard: Discard,
    ) -> None:
        self._repairs = repairs
        self._metrics = metrics
        self._limit = limit
        self._deadline = deadline
        self._discard = discard
        self._followers: dict[asyncio.Future[None], tuple[LateWrite, asyncio.Future[PutAck]]] = {}
        self._writing: dict[tuple[str, str, str], set[str]] = {}  # (bucket, key, version): nodes

    def room(self) -> bool:
        """Whether an upload starting now may be answered before all its replicas are done
        (checked as it starts, so uploads in flight may each add to the count)."""
        return len(self._followers) < self._limit

    def follow(self, write: LateWrite, task: asyncio.Future[PutAck]) -> None:
        follower = asyncio.ensure_future(self._see_through(write, task))
        self._followers[follower] = (write, task)
        self._writing.setdefault(_version_of(write), set()).add(write.node.id)
        self._metrics.late_replica_writes.inc()
        follower.add_done_callback(self._forget)

    def _forget(self, follower: asyncio.Future[None]) -> None:
        write, _ = self._followers.pop(follower)
        nodes = self._writing.get(_version_of(write), set())
        nodes.discard(write.node.id)
        if not nodes:
            self._writing.pop(_version_of(write), None)
        self._metrics.late_replica_writes.dec()

    def writing(self, bucket: str, key: str, version: str) -> frozenset[str]:
        """The nodes still writing this version after its upload was answered: a read asks them
        last, since they may not hold it yet (a stopped one would not answer at all)."""
        return frozenset(self._writing.get((bucket, key, version), ()))

    async def settle(self, addr: ObjectAddress, version: str) -> None:
        """Wait for the late writes of this version: a withdrawal must come after them."""
        key = (addr, version)
        mine = [f for f, (late, _) in self._followers.items() if (late.addr, late.version) == key]
        if mine:
            await asyncio.wait(mine)

    async def _see_through(self, write: LateWrite, task: asyncio.Future[PutAck]) -> None:
        try:
            problem = await self._outcome(write, task)
            if problem is not None:
                await self._repair(write, problem)
        except Exception:
            # Nobody awaits this task: a failure (the catalog gone at shutdown) is logged here
            # or not at all, and the nodes' replicators still restore the copy.
            log.exception("following replica %s of %s failed", write.node.id, write.version)

    async def _outcome(self, write: LateWrite, task: asyncio.Future[PutAck]) -> str | None:
        """What went wrong with the write, or None if the replica holds the version."""
        done, _ = await asyncio.wait([task], timeout=self._deadline)
        if not done:
            task.cancel()
            await asyncio.wait([task])
            return f"no answer within {self._deadline:.0f}s"
        if task.cancelled():
            return "it was cut before it finished"
        if (exc := task.exception()) is not None:
            return str(exc) or repr(exc)
        ack = task.result()
        if ack.holds(write.etag, write.size):
            return None
        await self._discard(write.addr, write.version, [write.node])
        return f"it stored md5 {ack.etag} size {ack.size}, not {write.etag} {write.size}"

    async def _repair(self, write: LateWrite, problem: str) -> None:
        log.warning(
            "replica %s of %s/%s %s failed after the upload was answered (%s); queued for repair",
            write.node.id,
            write.addr.bucket,
            write.addr.key,
            write.version,
            problem,
        )
        self._metrics.late_replica_failures.inc()
        repair = Repair(write.addr.bucket, write.addr.key, write.version, write.primary, "late")
        await self._repairs.add_repairs([repair])
        self._metrics.repairs_queued.inc()

    async def close(self, grace: float) -> None:
        """Give the writes still running `grace` seconds, then cut them; each one cut is
        queued for repair."""
        if self._followers:
            await asyncio.wait(list(self._followers), timeout=grace)
        for _, task in self._followers.values():
            task.cancel()
        await asyncio.gather(*self._followers, return_exceptions=True)


def _version_of(write: LateWrite) -> tuple[str, str, str]:
    return write.addr.bucket, write.addr.key, write.version
