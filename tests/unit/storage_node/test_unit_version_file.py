"""A version's file: its bytes, then its metadata and footer; anything cut short is refused."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from shardgate.block_sums import CRC32C
from shardgate.versions import format_version
from storage_node.records import ObjectMeta
from storage_node.version_file import (
    FOOTER,
    TAIL_READ,
    NoTrailer,
    body_size_at,
    put_trailer,
    read_meta_at,
    trailer,
)

V1 = format_version(1_000)


def meta_of(body: bytes, **extra: object) -> ObjectMeta:
    return ObjectMeta("bkt", "k", V1, len(body), "e" * 32, **extra)  # type: ignore[arg-type]


def write(path: Path, raw: bytes) -> Path:
    path.write_bytes(raw)
    return path


def test_the_metadata_round_trips_and_the_body_comes_first(tmp_path: Path) -> None:
    body = os.urandom(5000)
    meta = meta_of(body, user_meta={"owner": "ann"}, blocks=(7,), block_sum=CRC32C)
    path = write(tmp_path / "v", body + trailer(meta))
    assert read_meta_at(path) == meta
    assert body_size_at(path) == len(body)
    assert path.read_bytes()[: len(body)] == body


def test_a_trailer_longer_than_one_tail_read_is_read_whole(tmp_path: Path) -> None:
    body = b"x" * 100
    meta = meta_of(body, blocks=tuple(range(4096)), block_sum=CRC32C)  # a 4 GiB version's sums
    assert len(trailer(meta)) > TAIL_READ
    assert read_meta_at(write(tmp_path / "v", body + trailer(meta))) == meta


def test_an_empty_body_is_only_its_trailer(tmp_path: Path) -> None:
    meta = meta_of(b"")
    path = write(tmp_path / "v", trailer(meta))
    assert (read_meta_at(path), body_size_at(path)) == (meta, 0)


@pytest.mark.parametrize(
    "damage",
    [
        lambda raw: raw[:-1],  # the footer cut
        lambda raw: raw[: -FOOTER.size],  # no footer at all
        lambda raw: raw[:3] + raw[4:],  # a byte of the body lost: sizes disagree
        lambda raw: raw[: -FOOTER.size - 2] + b"}}" + raw[-FOOTER.size :],  # the JSON broken
        lambda raw: raw[:-8] + b"NOTMAGIC",
        lambda raw: b"",
    ],
)
def test_a_damaged_file_raises_no_trailer(tmp_path: Path, damage: object) -> None:
    body = b"some bytes"
    raw = body + trailer(meta_of(body))
    path = write(tmp_path / "v", damage(raw))  # type: ignore[operator]
    with pytest.raises(NoTrailer):
        read_meta_at(path)


def test_put_trailer_replaces_a_half_written_one(tmp_path: Path) -> None:
    body = b"pending upload bytes"
    meta = meta_of(body)
    path = write(tmp_path / "v", body + trailer(meta)[:9])  # a crash mid-append
    put_trailer(path, meta, fsync=False)
    assert path.read_bytes() == body + trailer(meta)
    put_trailer(path, meta, fsync=True)  # again: the same file
    assert path.read_bytes() == body + trailer(meta)
