"""A completed multipart object read as one stream: its parts in order, each from its own
replicas, with a Range cut across part boundaries; one part is open at a time."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable

from multidict import CIMultiDict

from gateway.catalog import ObjectRecord, PartRecord
from gateway.nodes import ObjectAddress
from gateway.replicated_read import ReplicatedReader
from ring import Ring
from shardgate.internal_api import VERSION_HEADER


class ManifestStream:
    def __init__(
        self,
        reader: ReplicatedReader,
        ring: Ring,
        locate: Callable[[PartRecord], tuple[ObjectAddress, ObjectRecord]],
        record: ObjectRecord,
        span: tuple[int, int] | None,
    ) -> None:
        self._reader = reader
        self._ring = ring
        self._locate = locate
        self._record = record
        self.start, end = span or (0, record.size)
        self.length = end - self.start
        self.status = 206 if span else 200
        self.headers: CIMultiDict[str] = CIMultiDict(
            {
                "Content-Type": record.content_type,
                "ETag": f'"{record.etag}"',
                "Last-Modified": time.strftime(
                    "%a, %d %b %Y %H:%M:%S GMT", time.gmtime(record.modified)
                ),
                VERSION_HEADER: record.version,
            }
        )
        if span:
            self.headers["Content-Range"] = f"bytes {self.start}-{end - 1}/{record.size}"

    async def chunks(self, size: int) -> AsyncIterator[bytes]:
        end = self.start + self.length
        offset = 0
        for part in self._record.manifest:
            first, last = max(self.start, offset), min(end, offset + part.size)
            if first < last:
                addr, part_record = self._locate(part)
                wanted = f"bytes={first - offset}-{last - offset - 1}"
                stream = await self._reader.open(self._ring, addr, part_record, wanted)
                async for chunk in stream.chunks(size):
                    yield chunk
            offset += part.size
            if offset >= end:
                return
