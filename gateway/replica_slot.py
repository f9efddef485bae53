"""One replica of a streamed write: its queue of chunks, the node taking them, and whether the
write still has a quorum of replicas taking it (and, if not, whether full disks are why)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from gateway.errors import InsufficientStorage, QuorumNotReached
from gateway.nodes import PutAck
from ring import Node
from shardgate.streams import queued_body

log = logging.getLogger(__name__)


class Feed:
    """One replica's queue of chunks; None marks the end of the body, unless its length was
    declared: then it ends as its last byte is sent."""

    def __init__(self, depth: int, length: int | None) -> None:
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=depth)
        self.length = length
        self.started = False
        self.closed = False

    async def chunks(self) -> AsyncIterator[bytes]:
        async for chunk in queued_body(self.queue, self.length):
            self.started = True
            yield chunk

    def close(self) -> None:
        """The consumer is gone: free the queue so the producer never blocks on it again."""
        self.closed = True
        while not self.queue.empty():
            self.queue.get_nowait()


@dataclass
class Slot:
    primary: Node
    node: Node
    feed: Feed
    task: asyncio.Task[PutAck] | None = field(default=None, repr=False)
    full: bool = False  # its node refused the write for lack of space (507)

    async def offer(self, chunk: bytes | None, stall_timeout: float) -> None:
        if self.feed.closed:
            return
        try:
            self.feed.queue.put_nowait(chunk)
            return
        except asyncio.QueueFull:
            pass
        try:
            await asyncio.wait_for(self.feed.queue.put(chunk), stall_timeout)
        except TimeoutError:
            log.warning(
                "replica %s stalled for %.0fs; dropping it from this write",
                self.node.id,
                stall_timeout,
            )
            self.feed.close()
            if self.task is not None:
                self.task.cancel()


def need_quorum(slots: list[Slot], need: int, missed: int) -> None:
    """Raise unless `need` replicas still take the write (`missed`: primaries no node took)."""
    if sum(not slot.feed.closed for slot in slots) < need:
        raise_if_full(slots, missed)
        raise QuorumNotReached("too many replicas failed during the upload")


def raise_if_full(slots: list[Slot], missed: int) -> None:
    """A quorum lost only to full disks is a 507 for the operator, not a 503 to retry at once;
    one a down node helped lose (`missed`) is a 503 still: a retry may find it back."""
    failed = [slot for slot in slots if slot.feed.closed]
    if failed and not missed and all(slot.full for slot in failed):
        nodes = ", ".join(slot.node.id for slot in failed)
        raise InsufficientStorage(
            f"too few replicas have room for this write: the disks of {nodes} are full"
        )
