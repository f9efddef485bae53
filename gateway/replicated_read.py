"""Reading an object from the first replica that can serve it, and carrying on from another
replica, at the same byte, if that one fails part-way (the resumed range is pinned to the
same ETag with If-Match, so bytes of two versions are never spliced together)."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Callable, Collection, Mapping

from gateway.catalog import ObjectRecord
from gateway.errors import InvalidRange, ServiceUnavailable
from gateway.metrics import GatewayMetrics
from gateway.node_health import NodeHealth
from gateway.nodes import (
    NodeClient,
    NodeError,
    NodeFailed,
    NodeUnavailable,
    ObjectAddress,
    ReadStream,
)
from ring import Node, Ring

log = logging.getLogger(__name__)
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+)")


class ObjectStream:
    """An open download: the first replica's status and headers, then the body with failover."""

    def __init__(
        self,
        reader: ReplicatedReader,
        addr: ObjectAddress,
        record: ObjectRecord,
        first: ReadStream,
        rest: list[Node],
    ) -> None:
        self._reader = reader
        self._addr = addr
        self._record = record
        self._current = first
        self._rest = rest
        self.status = first.status
        self.headers = first.headers
        self.etag = first.headers.get("ETag", "")
        match = _CONTENT_RANGE.fullmatch(first.headers.get("Content-Range", ""))
        if match:
            self.start, last = int(match[1]), int(match[2])
            self.length = last - self.start + 1
        else:
            self.start, self.length = 0, int(first.headers.get("Content-Length", "0"))

    async def chunks(self, size: int) -> AsyncIterator[bytes]:
        sent = 0
        try:
            while True:
                try:
                    async for chunk in self._current.chunks(size):
                        sent += len(chunk)
                        yield chunk
                    if sent < self.length:
                        raise NodeFailed(
                            self._current.node, f"body ended after {sent} of {self.length} bytes"
                        )
                    return
                except NodeError as exc:
                    log.warning(
                        "read of %s/%s broke at byte %d: %s",
                        self._record.bucket,
                        self._record.key,
                        sent,
                        exc,
                    )
                    self._current.close()
                    self._current = await self._resume(self.start + sent)
        finally:
            self._current.close()

    async def _resume(self, offset: int) -> ReadStream:
        last = self.start + self.length - 1
        headers = {"Range": f"bytes={offset}-{last}", "If-Match": self.etag}
        stream = await self._reader.first_serving(
            self._addr, self._record, self._rest, headers, accept=(206,)
        )
        if stream is None:
            raise NodeFailed(self._current.node, "no other replica can resume the download")
        return stream


Writing = Callable[[str, str, str], Collection[str]]


class ReplicatedReader:
    def __init__(
        self,
        client: NodeClient,
        health: NodeHealth,
        metrics: GatewayMetrics,
        writing: Writing = lambda bucket, key, version: (),
    ) -> None:
        """`writing` names the nodes still writing a version after its upload was answered."""
        self._client = client
        self._health = health
        self._metrics = metrics
        self._writing = writing

    def candidates(self, ring: Ring, partition: int, record: ObjectRecord) -> list[Node]:
        """The nodes to read `record` from, best first: the primaries the write recorded (in
        the partition's order, so reads spread over the nodes), then its other replicas (a
        handoff may have handed its copy back since), then the other primaries; nodes
        believed up before nodes believed down. A recorded replica still writing the version
        (an upload answered at W) comes after the other recorded ones: it may not hold the
        version yet, but will sooner than a node the write never reached."""
        known = {node.id: node for node in ring.nodes}
        primaries = [node.id for node in ring.primaries(partition)]
        recorded = set(record.replicas)
        order = (
            *(n for n in primaries if n in recorded),
            *(n for n in record.replicas if n not in primaries),
            *primaries,
        )
        ordered: list[Node] = []
        for node_id in order:
            node = known.get(node_id)
            if node is not None and node not in ordered:
                ordered.append(node)
        writing = self._writing(record.bucket, record.key, record.version)

        def rank(node: Node) -> tuple[bool, int]:
            place = 2 if node.id not in recorded else 1 if node.id in writing else 0
            return not self._health.is_up(node.id), place

        return sorted(ordered, key=rank)

    async def open(
        self, ring: Ring, addr: ObjectAddress, record: ObjectRecord, range_header: str | None
    ) -> ObjectStream:
        nodes = self.candidates(ring, addr.partition, record)
        headers = {"Range": range_header} if range_header else {}
        first = await self.first_serving(addr, record, nodes, headers, accept=(200, 206))
        if first is None:
            raise ServiceUnavailable(
                f"no replica of {record.bucket}/{record.key} could be read; try again"
            )
        return ObjectStream(self, addr, record, first, nodes)

    async def first_serving(
        self,
        addr: ObjectAddress,
        record: ObjectRecord,
        nodes: list[Node],
        headers: Mapping[str, str],
        accept: tuple[int, ...],
    ) -> ReadStream | None:
        """Try nodes in order, removing each one tried from `nodes`; None when none can serve."""
        while nodes:
            node = nodes.pop(0)
            try:
                stream = await self._client.open_read(
                    node, addr, min_version=record.version, headers=headers
                )
            except NodeUnavailable as exc:
                self._health.mark_down(node.id, str(exc))
                self._metrics.read_failovers.inc()
                continue
            except NodeError as exc:
                log.warning(
                    "replica %s failed to open %s/%s: %s", node.id, record.bucket, record.key, exc
                )
                self._metrics.read_failovers.inc()
                continue
            if stream.status in accept:
                return stream
            stream.close()
            if stream.status == 416:
                raise InvalidRange(
                    "the range is outside the object",
                    headers={"Content-Range": stream.headers.get("Content-Range", "")},
                )
            log.info(
                "replica %s answered %d for %s/%s",
                node.id,
                stream.status,
                record.bucket,
                record.key,
            )
            self._metrics.read_failovers.inc()
        return None
