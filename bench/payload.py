"""Request bodies cut from one pre-generated random buffer: small ones are zero-copy views,
large ones stream as views that wrap around the buffer, so no object is ever built whole."""

from __future__ import annotations

import hashlib
import random
from collections.abc import AsyncIterator, Iterator

from bench.workloads import KiB, MiB

BUFFER_SIZE = 32 * MiB + 4 * KiB  # not a power of two, so objects start at varied offsets
STREAM_CHUNK = 256 * KiB
STREAM_ABOVE = 1 * MiB  # bodies larger than this are sent as an async stream of views

Body = memoryview | AsyncIterator[memoryview]


class Payload:
    """Deterministic object contents: object `index` of `size` bytes is always the same bytes."""

    def __init__(self, seed: int = 20240501, size: int = BUFFER_SIZE) -> None:
        self._buffer = random.Random(seed).randbytes(size)
        self._view = memoryview(self._buffer)

    def _offset(self, index: int, size: int) -> int:
        span = len(self._buffer) - size if size < len(self._buffer) else len(self._buffer)
        return (index * 1_000_003 + 4099) % max(span, 1)

    def pieces(self, index: int, size: int, chunk: int = STREAM_CHUNK) -> Iterator[memoryview]:
        """The object's bytes as views of at most `chunk` bytes, wrapping around the buffer."""
        position = self._offset(index, size)
        left = size
        while left > 0:
            take = min(chunk, left, len(self._buffer) - position)
            yield self._view[position : position + take]
            left -= take
            position = (position + take) % len(self._buffer)

    def body(self, index: int, size: int) -> Body:
        if size <= STREAM_ABOVE:
            start = self._offset(index, size)
            return self._view[start : start + size]
        return self._stream(index, size)

    async def _stream(self, index: int, size: int) -> AsyncIterator[memoryview]:
        for piece in self.pieces(index, size):
            yield piece

    def md5(self, index: int, size: int) -> str:
        digest = hashlib.md5(usedforsecurity=False)
        for piece in self.pieces(index, size, chunk=4 * MiB):
            digest.update(piece)
        return digest.hexdigest()
