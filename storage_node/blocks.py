"""Block checksums: a CRC-32 per 1 MiB block of every stored version, kept in its metadata, so
a read checks each block before sending it and a flipped bit on disk is never served (the
gateway then resumes the download on another replica at that very byte)."""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import IO

from storage_node.errors import ReplicaCorrupt

BLOCK_SIZE = 1024 * 1024


class BlockSums:
    """CRC-32s of consecutive BLOCK_SIZE blocks of a stream, fed in chunks of any size."""

    def __init__(self) -> None:
        self._sums: list[int] = []
        self._crc = 0
        self._fill = 0

    def update(self, chunk: bytes | memoryview) -> None:
        view = memoryview(chunk)
        while view:
            take = min(BLOCK_SIZE - self._fill, len(view))
            self._crc = zlib.crc32(view[:take], self._crc)
            self._fill += take
            view = view[take:]
            if self._fill == BLOCK_SIZE:
                self._sums.append(self._crc)
                self._crc, self._fill = 0, 0

    def finish(self) -> tuple[int, ...]:
        return (*self._sums, self._crc) if self._fill else tuple(self._sums)


def read_blocks(fh: IO[bytes], first: int, count: int, size: int, sums: Sequence[int]) -> bytes:
    """Blocks first..first+count-1 of an open file of `size` bytes, read in one call, if each
    has its CRC-32 in `sums` (one read and one executor hop for several blocks)."""
    fh.seek(first * BLOCK_SIZE)
    data = fh.read(min(count * BLOCK_SIZE, size - first * BLOCK_SIZE))
    view = memoryview(data)
    for index in range(first, first + count):
        offset = (index - first) * BLOCK_SIZE
        if zlib.crc32(view[offset : offset + BLOCK_SIZE]) != sums[index]:
            raise ReplicaCorrupt(f"block {index} fails its checksum; the copy is quarantined")
    return data
