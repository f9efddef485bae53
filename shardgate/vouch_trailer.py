"""A body's last bytes as its sender's vouch. The gateway appends the md5 and the block-sums
digest it computed while streaming a write, so a node need not hash the body with md5 again: it
compares its own block sums with the digest and keeps the md5 as the ETag."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator

TRAILER_SIZE = 48  # 16 bytes of md5, 32 of the sha256 of the CRC-32C block sums
TRAILER_KIND = "md5+crc32c-blocks"  # the value of TRAILER_HEADER


def vouched_length(size: int | None) -> int | None:
    """What a body of `size` bytes declares once its trailer follows it (None: chunked)."""
    return None if size is None else size + TRAILER_SIZE


def encode_trailer(etag: str, blocks_digest: str) -> bytes:
    return bytes.fromhex(etag) + bytes.fromhex(blocks_digest)


class TrailerSplit:
    """Passes a body through less its last TRAILER_SIZE bytes, which are the trailer.

    It holds back one chunk rather than copying: a chunk is passed on untouched once the next
    one is long enough to hold the whole trailer, so only the body's end is ever copied.
    """

    def __init__(self) -> None:
        self._held = b""
        self.trailer: tuple[str, str] | None = None  # set by strip() once the body has ended

    async def strip(self, pieces: AsyncIterable[bytes]) -> AsyncIterator[bytes]:
        """The object's bytes of a body arriving in `pieces`, then `trailer` set. Fed network
        reads before they are joined into chunks, it copies at most the last read."""
        async for piece in pieces:
            if out := self.feed(piece):
                yield out
        rest, self.trailer = self.finish()
        if rest:
            yield rest

    def feed(self, chunk: bytes) -> bytes:
        """Bytes now known to be the object's (often the previous chunk; b"" while held)."""
        if len(chunk) >= TRAILER_SIZE:
            out, self._held = self._held, chunk
            return out
        held = self._held + chunk  # a short piece: keep only the last TRAILER_SIZE bytes
        self._held = held[-TRAILER_SIZE:]
        return held[:-TRAILER_SIZE]

    def finish(self) -> tuple[bytes, tuple[str, str] | None]:
        """The object's last bytes and the trailer's (md5, block-sums digest), once the body has
        ended; None for the trailer if the body was too short to hold one."""
        if len(self._held) < TRAILER_SIZE:
            return b"", None
        tail = self._held[-TRAILER_SIZE:]
        return self._held[:-TRAILER_SIZE], (tail[:16].hex(), tail[16:].hex())
