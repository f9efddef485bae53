"""Copying one object's bytes into a Sink and checking what the service then holds.

The event loop only moves chunks into part-sized lists; joining, hashing and every sink call
run in the mirror's thread pool. At most two parts are held per transfer (one being sent, one
being read), so memory is bounded by the part size, never by the object's size.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any, TypeVar

from cloud_sync.sink import Sink, SinkError

log = logging.getLogger(__name__)
T = TypeVar("T")


class MirrorMismatch(Exception):
    """The bytes read, or what the service holds afterwards, differ from what was expected."""


@dataclass(frozen=True)
class TransferLimits:
    multipart_threshold: int  # objects larger than this go up in parts
    part_size: int


class _Digests:
    """The whole object's md5 and each part's, fed in order from pool threads."""

    def __init__(self) -> None:
        self.whole = hashlib.md5(usedforsecurity=False)
        self.parts: list[bytes] = []

    def add(self, pieces: list[bytes]) -> tuple[bytes, bytes]:
        data = b"".join(pieces)
        self.whole.update(data)
        digest = hashlib.md5(data, usedforsecurity=False).digest()
        self.parts.append(digest)
        return data, digest

    def multipart_etag(self) -> str:
        joined = hashlib.md5(b"".join(self.parts), usedforsecurity=False).hexdigest()
        return f"{joined}-{len(self.parts)}"


class Transfer:
    """Puts and deletes against one sink, its calls run in `pool`."""

    def __init__(
        self,
        sink: Sink,
        pool: Executor,
        limits: TransferLimits,
        on_bytes: Callable[[int], None] = lambda _: None,
    ) -> None:
        self.sink = sink
        self._pool = pool
        self._limits = limits
        self._on_bytes = on_bytes

    async def _call(self, func: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, func, *args)

    async def put(
        self,
        key: str,
        chunks: AsyncIterator[bytes],
        size: int,
        md5: str | None,
        metadata: Mapping[str, str],
    ) -> str:
        """Upload `size` bytes under `key`; `md5` (when the object's ETag is one) is checked
        against the bytes read. Returns the ETag the service reports after checking it."""
        if size <= self._limits.multipart_threshold:
            digests = _Digests()
            pieces = [chunk async for chunk in chunks]
            data, digest = await self._call(digests.add, pieces)
            self._check_read(key, len(data), size, digests, md5)
            etag = await self._call(self.sink.put, key, data, digest, metadata)
            self._on_bytes(len(data))
            expected = digest.hex()
        else:
            digests, etag = await self._put_parts(key, chunks, size, md5, metadata)
            expected = digests.multipart_etag()
        await self._verify(key, size, expected, etag)
        return etag

    async def _put_parts(
        self,
        key: str,
        chunks: AsyncIterator[bytes],
        size: int,
        md5: str | None,
        metadata: Mapping[str, str],
    ) -> tuple[_Digests, str]:
        part_size = self._limits.part_size
        digests = _Digests()
        etags: list[str] = []
        upload_id = await self._call(self.sink.start_multipart, key, metadata)
        sending: asyncio.Future[str] | None = None
        read = 0

        def send_part(number: int, pieces: list[bytes]) -> str:
            data, digest = digests.add(pieces)
            etag = self.sink.put_part(key, upload_id, number, data, digest)
            self._on_bytes(len(data))
            return etag

        async def send(pieces: list[bytes]) -> None:
            nonlocal sending
            if sending is not None:
                etags.append(await sending)  # parts are hashed in order, two at most in memory
            loop = asyncio.get_running_loop()
            sending = loop.run_in_executor(self._pool, send_part, len(etags) + 1, pieces)

        try:
            pieces: list[bytes] = []
            held = 0
            async for chunk in chunks:
                read += len(chunk)
                while chunk:
                    take = chunk[: part_size - held]
                    chunk = chunk[len(take) :]
                    pieces.append(take)
                    held += len(take)
                    if held == part_size:
                        await send(pieces)
                        pieces, held = [], 0
            if pieces:
                await send(pieces)
            if sending is not None:
                etags.append(await sending)
                sending = None
            self._check_read(key, read, size, digests, md5)
            etag = await self._call(self.sink.complete_multipart, key, upload_id, etags)
        except BaseException:
            if sending is not None:
                sending.cancel()
            await self._abort(key, upload_id)
            raise
        return digests, etag

    async def _abort(self, key: str, upload_id: str) -> None:
        try:
            await asyncio.shield(self._call(self.sink.abort_multipart, key, upload_id))
        except SinkError as exc:
            # The service's own lifecycle rules reclaim abandoned uploads; nothing else to do.
            log.warning("could not abort the multipart upload of %s: %s", key, exc)

    @staticmethod
    def _check_read(key: str, read: int, size: int, digests: _Digests, md5: str | None) -> None:
        if read != size:
            raise MirrorMismatch(f"{key}: read {read} bytes from the replicas, expected {size}")
        if md5 is not None and digests.whole.hexdigest() != md5:
            raise MirrorMismatch(f"{key}: the replica's bytes do not match md5 {md5}")

    async def _verify(self, key: str, size: int, expected_etag: str, etag: str) -> None:
        """The service must now hold `size` bytes under the ETag computed from what was sent."""
        stored = await self._call(self.sink.head, key)
        if stored is None:
            raise MirrorMismatch(f"{key}: missing from S3 right after the upload")
        if stored.size != size or stored.etag != expected_etag or etag != expected_etag:
            raise MirrorMismatch(
                f"{key}: S3 holds {stored.size} bytes with ETag {stored.etag} (upload answered"
                f" {etag}); expected {size} bytes with ETag {expected_etag}"
            )

    async def delete(self, key: str) -> None:
        await self._call(self.sink.delete, key)
        if await self._call(self.sink.head, key) is not None:
            raise MirrorMismatch(f"{key}: still in S3 after the delete")
