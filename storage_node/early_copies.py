"""Early copies: a direct upload is streamed to the partition's other primaries while the client
sends it, so that the commit only publishes it on each, as a gateway PUT writes every replica
at once. A peer that fails or falls behind is dropped, and the commit copies the upload to it
from this node instead.

Each copy runs one chunk behind the upload: its last chunk goes only with `finish`, so a peer
never holds a whole body that a later check on this node refuses. That holds whether the copy
declares the upload's length (sent as it is, no copy) or goes chunked (ended only by `finish`);
a body that turns out longer or shorter than its declared length drops the copies instead."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ring import Node, RingWatch
from shardgate.streams import queued_body
from storage_node.peers import PeerClient
from storage_node.records import PendingUpload

log = logging.getLogger(__name__)
QUEUE_CHUNKS = 4  # per peer: what a peer may lag behind this node's own disk (4 MiB by default)


async def early_copy_targets(rings: RingWatch | None, me: str, partition: int) -> list[Node]:
    """The partition's primaries other than this node (none on a node without a ring). The
    ring file is checked, and reloaded when it changed, on a worker thread, as the replicator
    does: a new ring is parsed and placed whole."""
    if rings is None:
        return []
    ring = await asyncio.get_running_loop().run_in_executor(None, rings.current)
    if ring is None:
        return []
    return [node for node in ring.primaries(partition) if node.id != me]


@dataclass
class _Copy:
    node: Node
    queue: asyncio.Queue[bytes | None]
    task: asyncio.Task[tuple[int, Any]]


class EarlyCopies:
    """One upload's copies in flight. Its body ends only when `finish` is called, after every
    check on the upload has passed; `close` before that aborts them, and the peers keep nothing."""

    def __init__(
        self,
        peers: PeerClient,
        me: str,
        upload: PendingUpload,
        *,
        stall: float,
        length: int | None = None,
    ) -> None:
        self._peers = peers
        self._me = me
        self._upload = upload
        self._stall = stall
        self._length = length  # the client's Content-Length, when it sent one
        self._held: bytes | None = None
        self._handed = 0
        self._copies: list[_Copy] = []
        self._tasks: list[asyncio.Task[tuple[int, Any]]] = []
        self.failed: list[tuple[str, str]] = []  # (node id, why): the commit copies to these

    def start(self, nodes: Sequence[Node]) -> None:
        for node in nodes:
            queue: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=QUEUE_CHUNKS)
            body = queued_body(queue, self._length)
            task = asyncio.create_task(
                self._peers.copy_upload(node.url, self._upload, self._me, body, self._length)
            )
            self._copies.append(_Copy(node, queue, task))
            self._tasks.append(task)

    async def feed(self, chunk: bytes) -> None:
        """Hand the chunk before this one to every copy still going; one that has failed, or
        has not taken a chunk for `stall` seconds, is dropped rather than allowed to hold the
        client up."""
        held, self._held = self._held, chunk
        if held is None:
            return
        if self._length is not None and self._handed + len(held) >= self._length:
            # The peers would hold a whole body before the upload's checks ran.
            self._drop_all(f"the body runs past its declared {self._length} bytes")
            return
        await self._hand_all(held)
        self._handed += len(held)

    async def finish(self) -> tuple[str, ...]:
        """Send the last chunk, end every body and wait for the peers' answers: the ids of
        those holding a copy."""
        last, self._held = self._held, None
        size = self._handed + (len(last) if last is not None else 0)
        if self._length is not None and size != self._length:
            self._drop_all(f"the body is {size} bytes, not its declared {self._length}")
        if last is not None:
            await self._hand_all(last)
        # A body of declared length ended with its last byte; only a chunked one needs its end.
        if self._length is None:
            await self._hand_all(None)
        if not self._copies:
            return ()
        await asyncio.wait([copy.task for copy in self._copies], timeout=self._stall)
        held = []
        for copy in self._copies:
            if not copy.task.done():
                self._fail(copy, f"no answer within {self._stall:.0f}s of the body's end")
                continue
            try:
                status, answer = copy.task.result()
            except Exception as exc:  # noqa: BLE001 - any failure only costs a copy at commit
                self._fail(copy, repr(exc))
                continue
            if status == 201:
                held.append(copy.node.id)
            else:
                self._fail(copy, f"answered {status}: {answer}")
        self._copies = []
        return tuple(held)

    async def close(self) -> None:
        """Abort whatever is still in flight (the peers discard partial copies)."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _hand_all(self, item: bytes | None) -> None:
        for copy in list(self._copies):
            await self._hand(copy, item)

    async def _hand(self, copy: _Copy, item: bytes | None) -> None:
        if not copy.task.done():
            if not copy.queue.full():
                copy.queue.put_nowait(item)
                return
            put = asyncio.ensure_future(copy.queue.put(item))
            done, _ = await asyncio.wait(
                (put, copy.task), timeout=self._stall, return_when=asyncio.FIRST_COMPLETED
            )
            if put in done:
                return
            put.cancel()
        if not copy.task.done():
            self._fail(copy, f"took no data for {self._stall:.0f}s")
        elif not copy.task.cancelled() and copy.task.exception() is not None:
            self._fail(copy, repr(copy.task.exception()))
        else:
            self._fail(copy, "answered before the body ended")

    def _drop_all(self, why: str) -> None:
        for copy in list(self._copies):
            self._fail(copy, why)

    def _fail(self, copy: _Copy, why: str) -> None:
        copy.task.cancel()
        self._copies.remove(copy)
        self.failed.append((copy.node.id, why))
        log.warning(
            "early copy of upload %s to %s dropped (the commit will copy it): %s",
            self._upload.upload_id,
            copy.node.id,
            why,
        )
