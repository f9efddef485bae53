"""Reading request bodies in fixed-size chunks, ending a body whose sender goes quiet."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from aiohttp import StreamReader

from shardgate.errors import ShardgateError


class BodyTimeout(ShardgateError):
    status = 408
    code = "RequestTimeout"


async def sized_chunks(
    reader: StreamReader, size: int, idle_timeout: float | None = None
) -> AsyncIterator[bytes]:
    """Yield chunks of exactly `size` bytes (the last may be shorter) until the body ends.

    A sender may be slow, but one that sends nothing for `idle_timeout` seconds is cut off, so
    it cannot hold an upload slot forever. Per-chunk work (fan-out, hashing, executor hops) is
    then paid per chunk rather than per network read.
    """
    pieces: list[bytes] = []
    held = 0
    while True:
        try:
            async with asyncio.timeout(idle_timeout):
                data = await reader.readany()
        except TimeoutError:
            raise BodyTimeout(f"no request body bytes for {idle_timeout:.0f}s") from None
        if not data:
            if pieces:
                yield b"".join(pieces)
            return
        # Keep the network's pieces and join them once per chunk: one copy of each byte.
        pieces.append(data)
        held += len(data)
        while held >= size:
            joined = b"".join(pieces)
            yield joined[:size]
            rest = joined[size:]
            pieces, held = ([rest] if rest else []), len(rest)
