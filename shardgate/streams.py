"""Reading request bodies in fixed-size chunks, so per-chunk work is paid per chunk, not packet."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from aiohttp import StreamReader


async def sized_chunks(reader: StreamReader, size: int) -> AsyncIterator[bytes]:
    """Yield chunks of exactly `size` bytes (the last may be shorter) until the body ends."""
    while True:
        try:
            yield await reader.readexactly(size)
        except asyncio.IncompleteReadError as exc:
            if exc.partial:
                yield exc.partial
            return
