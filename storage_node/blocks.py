"""Block checksums: a CRC-32 per 1 MiB block of every stored version, kept in its metadata, so
a read checks each block before sending it and a flipped bit on disk is never served (the
gateway then resumes the download on another replica at that very byte)."""

from __future__ import annotations

import os
import zlib
from collections.abc import Sequence

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


def check_blocks(
    fd: int, first: int, count: int, size: int, sums: Sequence[int], buffer: bytearray
) -> int:
    """Check blocks first..first+count-1 of an open file of `size` bytes against their CRC-32s
    in `sums`, reading them into `buffer` in one call; the number of bytes they span."""
    length = min(count * BLOCK_SIZE, size - first * BLOCK_SIZE)
    view = memoryview(buffer)[:length]
    if os.preadv(fd, [view], first * BLOCK_SIZE) != length:
        raise ReplicaCorrupt(f"the file ends inside block {first + count - 1}; quarantined")
    for index in range(first, first + count):
        offset = (index - first) * BLOCK_SIZE
        if zlib.crc32(view[offset : offset + BLOCK_SIZE]) != sums[index]:
            raise ReplicaCorrupt(f"block {index} fails its checksum; the copy is quarantined")
    return length
