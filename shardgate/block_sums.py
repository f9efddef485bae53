"""CRC-32C sums of a body's 1 MiB blocks. Nodes keep them to check every read; a sender that
computed them vouches with their digest, so the receiver compares sums instead of hashing md5
again. google-crc32c computes them with the CPU's crc32 instruction."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import google_crc32c

BLOCK_SIZE = 1024 * 1024
CRC32C = "crc32c"


class BlockSums:
    """CRC-32Cs of consecutive BLOCK_SIZE blocks of a stream, fed in chunks of any size, and
    their digest kept up as they come (a sender that keeps no sums holds nothing per block)."""

    def __init__(self, *, keep: bool = True) -> None:
        self._sums: list[int] | None = [] if keep else None
        self._digest = hashlib.sha256()
        self._crc = 0
        self._fill = 0

    def update(self, chunk: bytes) -> None:
        chunk = bytes(chunk)  # google-crc32c takes bytes only; a no-op for bytes
        offset = 0
        while offset < len(chunk):
            take = min(BLOCK_SIZE - self._fill, len(chunk) - offset)
            piece = chunk if take == len(chunk) else chunk[offset : offset + take]
            self._crc = google_crc32c.extend(self._crc, piece)
            self._fill += take
            offset += take
            if self._fill == BLOCK_SIZE:
                self._digest.update(self._crc.to_bytes(4, "big"))
                if self._sums is not None:
                    self._sums.append(self._crc)
                self._crc, self._fill = 0, 0

    def finish(self) -> tuple[int, ...]:
        if self._sums is None:
            raise ValueError("these block sums were not kept, only their digest")
        return (*self._sums, self._crc) if self._fill else tuple(self._sums)

    def digest(self) -> str:
        """blocks_digest of the sums so far, without going over them again."""
        digest = self._digest.copy()
        if self._fill:
            digest.update(self._crc.to_bytes(4, "big"))
        return digest.hexdigest()


def blocks_digest(sums: Sequence[int]) -> str:
    """One short digest of a version's block sums, to compare them across nodes in a header."""
    return hashlib.sha256(b"".join(crc.to_bytes(4, "big") for crc in sums)).hexdigest()
