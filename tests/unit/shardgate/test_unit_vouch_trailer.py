"""shardgate.vouch_trailer: a body's last 48 bytes split off however the body arrives in pieces."""

from __future__ import annotations

import hashlib
import random
from collections.abc import AsyncIterator

import pytest

from shardgate.vouch_trailer import TRAILER_SIZE, TrailerSplit, encode_trailer

MD5 = hashlib.md5(b"body").hexdigest()
DIGEST = hashlib.sha256(b"sums").hexdigest()
TRAILER = encode_trailer(MD5, DIGEST)


def split_all(pieces: list[bytes]) -> tuple[bytes, tuple[str, str] | None]:
    split = TrailerSplit()
    out = b"".join(split.feed(piece) for piece in pieces)
    rest, trailer = split.finish()
    return out + rest, trailer


def test_trailer_round_trips() -> None:
    assert len(TRAILER) == TRAILER_SIZE
    assert split_all([b"body" + TRAILER]) == (b"body", (MD5, DIGEST))


@pytest.mark.parametrize("seed", range(200))
def test_any_cut_of_the_body_gives_the_same_split(seed: int) -> None:
    rng = random.Random(seed)
    body = rng.randbytes(rng.randrange(0, 400))
    data = body + TRAILER
    cuts = sorted(rng.sample(range(len(data) + 1), rng.randrange(0, 7)))
    pieces = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
    assert split_all(pieces) == (body, (MD5, DIGEST))


def test_whole_chunks_pass_through_uncopied() -> None:
    first, second = b"a" * 1000, b"b" * 1000
    split = TrailerSplit()
    assert split.feed(first) == b""
    assert split.feed(second) is first
    assert split.feed(TRAILER) is second
    assert split.finish() == (b"", (MD5, DIGEST))


@pytest.mark.parametrize("body", [b"", b"x" * (TRAILER_SIZE - 1)])
def test_a_body_shorter_than_a_trailer_has_none(body: bytes) -> None:
    assert split_all([body]) == (b"", None)


async def stripped(pieces: list[bytes]) -> tuple[list[bytes], tuple[str, str] | None]:
    async def source() -> AsyncIterator[bytes]:
        for piece in pieces:
            yield piece

    split = TrailerSplit()
    out = [data async for data in split.strip(source())]
    return out, split.trailer


@pytest.mark.parametrize("seed", range(50))
async def test_strip_gives_the_body_and_the_trailer_however_it_is_cut(seed: int) -> None:
    rng = random.Random(seed)
    body = rng.randbytes(rng.randrange(0, 400))
    data = body + TRAILER
    cuts = sorted(rng.sample(range(len(data) + 1), rng.randrange(0, 7)))
    pieces = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
    out, trailer = await stripped(pieces)
    assert (b"".join(out), trailer) == (body, (MD5, DIGEST))
    assert b"" not in out


async def test_strip_passes_every_read_but_the_last_through_uncopied() -> None:
    reads = [b"a" * 1000, b"b" * 1000, b"c" * 1000 + TRAILER]
    out, trailer = await stripped(reads)
    assert out[0] is reads[0] and out[1] is reads[1]
    assert out[2] == b"c" * 1000 and trailer == (MD5, DIGEST)


async def test_strip_of_a_body_shorter_than_a_trailer_sets_none() -> None:
    assert await stripped([b"x" * (TRAILER_SIZE - 1)]) == ([], None)
