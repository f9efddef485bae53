"""Request bodies: read in fixed-size chunks, ending one whose sender goes quiet; their length;
and an outgoing body fed from a queue."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator

from aiohttp import StreamReader, hdrs, web

from shardgate.errors import ShardgateError


class BodyTimeout(ShardgateError):
    status = 408
    code = "RequestTimeout"


def sized_chunks(
    reader: StreamReader, size: int, idle_timeout: float | None = None
) -> AsyncIterator[bytes]:
    """Yield chunks of at least `size` bytes, and less than `size` plus one network read (the
    last may be shorter), until the body ends.

    A sender may be slow, but one that sends nothing for `idle_timeout` seconds is cut off, so
    it cannot hold an upload slot forever. Per-chunk work (fan-out, hashing, executor hops) is
    then paid per chunk rather than per network read.
    """
    return joined(network_reads(reader, idle_timeout), size)


async def network_reads(
    reader: StreamReader, idle_timeout: float | None = None
) -> AsyncIterator[bytes]:
    """The body as the network delivered it, one buffered read at a time (readany() would join
    all it holds, a copy); a sender quiet for `idle_timeout` seconds is cut off."""
    while True:
        try:
            async with asyncio.timeout(idle_timeout):
                data, http_chunk_end = await reader.readchunk()
        except TimeoutError:
            raise BodyTimeout(f"no request body bytes for {idle_timeout:.0f}s") from None
        if not data:
            # The end of one chunk of a chunked body, not of the body. aiohttp's shared reader
            # for bodiless requests also answers (b"", True) once read: that is the end.
            if http_chunk_end and not reader.at_eof():
                continue
            return
        yield data


async def grouped(pieces: AsyncIterable[bytes], size: int) -> AsyncIterator[list[bytes]]:
    """`pieces` in groups of at least `size` bytes (the last may be shorter), left as they came:
    a consumer that takes a group piece by piece copies nothing to join them."""
    held: list[bytes] = []
    count = 0
    async for data in pieces:
        held.append(data)
        count += len(data)
        if count >= size:
            yield held
            held, count = [], 0
    if held:
        yield held


async def joined(pieces: AsyncIterable[bytes], size: int) -> AsyncIterator[bytes]:
    """`pieces` regrouped into chunks of at least `size` bytes (the last may be shorter)."""
    async for group in grouped(pieces, size):
        # Cutting at exactly `size` would copy every byte twice more (the slice and the rest);
        # joining once, or passing a big enough read through, copies it at most once.
        yield group[0] if len(group) == 1 else b"".join(group)


def decoded_length(request: web.Request) -> int | None:
    """The length of the body as a handler reads it, where the header states it: aiohttp decodes
    a body sent with a Content-Encoding, whose Content-Length is then the encoded length."""
    # Every header counts: aiohttp decodes by the last of several.
    encodings = request.headers.getall(hdrs.CONTENT_ENCODING, [])
    if any(encoding.strip().lower() != "identity" for encoding in encodings):
        return None
    return request.content_length


async def queued_body(
    queue: asyncio.Queue[bytes | None], length: int | None
) -> AsyncIterator[bytes]:
    """An outgoing body's chunks as they are queued: up to None, or up to `length` bytes when
    it is declared."""
    sent = 0
    while (chunk := await queue.get()) is not None:
        yield chunk
        sent += len(chunk)
        if sent == length:
            # The receiver may answer as soon as it has every byte, and aiohttp drops the
            # connection of a request whose body is still being written then.
            return
