"""shardgate.streams: sized_chunks regroups a body into chunks of at least `size` bytes, with
each byte copied at most once, grouped hands the reads on in such groups without a copy, and a
sender that goes quiet is cut off; decoded_length is a
body's length only where the header states the bytes a handler reads."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from unittest import mock

import pytest
from aiohttp import StreamReader
from aiohttp.streams import EMPTY_PAYLOAD, EmptyStreamReader
from aiohttp.test_utils import make_mocked_request
from multidict import CIMultiDict

from shardgate.streams import (
    BodyTimeout,
    decoded_length,
    grouped,
    network_reads,
    sized_chunks,
)

SIZE = 1000


def reader_of(pieces: list[bytes]) -> StreamReader:
    reader = StreamReader(mock.Mock(_reading_paused=False), 2**16, loop=asyncio.get_running_loop())
    for piece in pieces:
        reader.feed_data(piece)
    reader.feed_eof()
    return reader


async def collect(chunks: AsyncIterator[bytes]) -> list[bytes]:
    return [chunk async for chunk in chunks]


@pytest.mark.parametrize("seed", range(100))
async def test_chunks_rebuild_the_body_and_stay_within_their_bounds(seed: int) -> None:
    rng = random.Random(seed)
    pieces = [rng.randbytes(rng.randrange(1, 3 * SIZE)) for _ in range(rng.randrange(0, 12))]
    chunks = await collect(sized_chunks(reader_of(pieces), SIZE))
    assert b"".join(chunks) == b"".join(pieces)
    biggest_read = max((len(piece) for piece in pieces), default=0)
    for chunk in chunks[:-1]:
        assert SIZE <= len(chunk) < SIZE + biggest_read
    assert all(chunks)


async def test_a_read_of_at_least_size_passes_through_uncopied() -> None:
    big = b"x" * (SIZE + 1)
    chunks = await collect(sized_chunks(reader_of([big, b"tail"]), SIZE))
    assert chunks[0] is big
    assert chunks[1:] == [b"tail"]


async def test_small_reads_are_joined_once_size_is_reached() -> None:
    chunks = await collect(sized_chunks(reader_of([b"a" * 400, b"b" * 400, b"c" * 400]), SIZE))
    assert chunks == [b"a" * 400 + b"b" * 400 + b"c" * 400]


async def pieces_of(pieces: list[bytes]) -> AsyncIterator[bytes]:
    for piece in pieces:
        yield piece


@pytest.mark.parametrize("seed", range(50))
async def test_groups_hand_on_the_reads_themselves_in_runs_of_at_least_size(seed: int) -> None:
    rng = random.Random(seed)
    pieces = [rng.randbytes(rng.randrange(1, 3 * SIZE)) for _ in range(rng.randrange(0, 12))]
    groups = [group async for group in grouped(pieces_of(pieces), SIZE)]
    flat = [piece for group in groups for piece in group]
    assert len(flat) == len(pieces)
    assert all(got is sent for got, sent in zip(flat, pieces, strict=True))  # nothing copied
    for group in groups[:-1]:
        assert sum(map(len, group)) >= SIZE > sum(map(len, group[:-1]))
    assert all(groups)


async def test_the_chunk_ends_of_a_chunked_body_do_not_end_it() -> None:
    reader = StreamReader(mock.Mock(_reading_paused=False), 2**16, loop=asyncio.get_running_loop())
    for piece in (b"a" * 300, b"b" * 300, b"c" * 700, b"d" * 5):
        reader.begin_http_chunk_receiving()
        reader.feed_data(piece)
        reader.end_http_chunk_receiving()
    reader.feed_eof()
    chunks = await collect(sized_chunks(reader, SIZE))
    assert chunks == [b"a" * 300 + b"b" * 300 + b"c" * 700, b"d" * 5]


async def test_an_empty_body_yields_nothing() -> None:
    assert await collect(sized_chunks(reader_of([]), SIZE)) == []
    assert await collect(sized_chunks(EmptyStreamReader(), SIZE)) == []


@pytest.mark.timeout(10)  # the bug spins without yielding: no asyncio timeout can end it
async def test_every_bodiless_request_ends_at_once() -> None:
    # aiohttp reads every request without a body through one shared reader, which answers
    # (b"", True) once it has been read: taken for a chunk's end, it spun the event loop for
    # ever on the second empty PUT of a process.
    for _ in range(3):
        assert await collect(sized_chunks(EMPTY_PAYLOAD, SIZE)) == []


async def test_a_sender_that_goes_quiet_is_cut_off() -> None:
    reader = StreamReader(mock.Mock(_reading_paused=False), 2**16, loop=asyncio.get_running_loop())
    reader.feed_data(b"a" * 10)
    with pytest.raises(BodyTimeout, match="no request body bytes"):
        await collect(sized_chunks(reader, SIZE, idle_timeout=0.05))


@pytest.mark.parametrize(
    ("encodings", "expected"),
    [
        ([], 1000),
        (["identity"], 1000),
        (["gzip"], None),
        (["GZip"], None),
        (["identity", "gzip"], None),  # aiohttp decodes by the last header
        (["gzip", "identity"], None),
    ],
)
def test_decoded_length_is_the_header_only_for_bytes_read_as_sent(
    encodings: list[str], expected: int | None
) -> None:
    headers = CIMultiDict([("Content-Encoding", encoding) for encoding in encodings])
    headers["Content-Length"] = "1000"
    assert decoded_length(make_mocked_request("PUT", "/x", headers=headers)) == expected


def test_decoded_length_of_a_chunked_body_is_unknown() -> None:
    headers = CIMultiDict({"Transfer-Encoding": "chunked"})
    assert decoded_length(make_mocked_request("PUT", "/x", headers=headers)) is None


async def test_network_reads_are_the_buffered_reads_themselves() -> None:
    pieces = [b"a" * 300, b"b" * 5000, b"c"]
    reads = await collect(network_reads(reader_of(pieces), idle_timeout=1))
    assert reads == pieces and all(read is piece for read, piece in zip(reads, pieces, strict=True))
