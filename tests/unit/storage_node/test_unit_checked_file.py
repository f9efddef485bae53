"""CheckedFile: the windows a checked answer is sent in, and the check that guards each one."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random
import zlib
from collections.abc import Callable
from pathlib import Path

import google_crc32c
import pytest

from shardgate.block_sums import BLOCK_SIZE, CRC32C, BlockSums
from shardgate.versions import format_version
from storage_node.blocks import CRC32
from storage_node.disk import DiskStore
from storage_node.errors import ReplicaCorrupt
from storage_node.records import NewVersion, ObjectMeta
from storage_node.verified import FIRST_WINDOW_BLOCKS, WINDOW_BLOCKS, CheckedFile, checked_bytes

PART = 3
HASH = hashlib.md5(b"bkt/big", usedforsecurity=False).hexdigest()
FIRST, WINDOW = FIRST_WINDOW_BLOCKS * BLOCK_SIZE, WINDOW_BLOCKS * BLOCK_SIZE
DATA = random.Random(7).randbytes(FIRST + WINDOW + BLOCK_SIZE + 4321)


def sums_of(crc: Callable[[bytes], int]) -> tuple[int, ...]:
    return tuple(crc(DATA[at : at + BLOCK_SIZE]) for at in range(0, len(DATA), BLOCK_SIZE))


@pytest.fixture
async def stored(tmp_path: Path) -> tuple[DiskStore, ObjectMeta]:
    store = DiskStore(tmp_path / "node")
    writer = await store.create_writer(PART, HASH)
    await writer.write(DATA)
    meta = await writer.commit(NewVersion("bkt", "big", format_version(1)), len(DATA))
    return store, meta


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (0, 10, [(0, 10)]),
        (0, FIRST, [(0, FIRST)]),
        (0, FIRST + 1, [(0, FIRST), (FIRST, 1)]),
        # A range starting in block 3 has its own first window, to the end of block 6.
        (FIRST - 5, FIRST + 5, [(FIRST - 5, 10)]),
        (FIRST - 5, 2 * FIRST, [(FIRST - 5, FIRST - BLOCK_SIZE + 5), (7 * BLOCK_SIZE, BLOCK_SIZE)]),
        (100, FIRST + WINDOW + 7, [(100, FIRST - 100), (FIRST, WINDOW), (FIRST + WINDOW, 7)]),
    ],
)
async def test_windows_split_a_span_at_window_edges(
    stored: tuple[DiskStore, ObjectMeta], start: int, end: int, expected: list[tuple[int, int]]
) -> None:
    store, meta = stored
    async with CheckedFile.open(store, PART, HASH, meta) as checked:
        assert checked.windows(start, end) == expected


async def test_every_window_of_a_sound_copy_passes_its_check(
    stored: tuple[DiskStore, ObjectMeta],
) -> None:
    store, meta = stored
    assert meta.block_sum == CRC32C
    assert meta.blocks == sums_of(google_crc32c.value)
    async with CheckedFile.open(store, PART, HASH, meta) as checked:
        for window in checked.windows(12345, len(DATA) - 10):
            await checked.check(*window)


@pytest.mark.parametrize("pieces", [[1], [BLOCK_SIZE - 1, 2], [3 * BLOCK_SIZE + 7], [65536] * 3])
def test_block_sums_do_not_depend_on_how_the_stream_is_cut(pieces: list[int]) -> None:
    sums = BlockSums()
    at = 0
    while at < len(DATA):
        for size in pieces:
            sums.update(DATA[at : at + size])
            at += size
    expected = [
        google_crc32c.value(DATA[a : a + BLOCK_SIZE]) for a in range(0, len(DATA), BLOCK_SIZE)
    ]
    assert sums.finish() == tuple(expected)


async def test_versions_of_the_first_format_are_checked_with_zlib_crc32(
    stored: tuple[DiskStore, ObjectMeta],
) -> None:
    store, meta = stored
    first_format = {**json.loads(meta.to_json()), "blocks": sums_of(zlib.crc32)}
    del first_format["block_sum"]
    legacy = ObjectMeta.from_json(json.dumps(first_format).encode())
    assert legacy.block_sum == CRC32
    async with CheckedFile.open(store, PART, HASH, legacy) as checked:
        for window in checked.windows(0, len(DATA)):
            await checked.check(*window)
    mislabelled = dataclasses.replace(legacy, block_sum=CRC32C)
    async with CheckedFile.open(store, PART, HASH, mislabelled) as checked:
        with pytest.raises(ReplicaCorrupt, match="block 0"):
            await checked.check(*checked.windows(0, len(DATA))[0])


async def test_a_flipped_byte_fails_only_the_window_holding_it(
    stored: tuple[DiskStore, ObjectMeta],
) -> None:
    store, meta = stored
    path = store.data_path(PART, HASH, meta.version)
    bad = FIRST + 2 * BLOCK_SIZE + 99
    with path.open("r+b") as fh:
        fh.seek(bad)
        fh.write(bytes([DATA[bad] ^ 0x80]))
    async with CheckedFile.open(store, PART, HASH, meta) as checked:
        first, second, third = checked.windows(0, len(DATA))
        await checked.check(*first)
        with pytest.raises(ReplicaCorrupt, match="block 6 fails its checksum"):
            await checked.check(*second)
        await checked.check(*third)


async def test_a_file_cut_short_fails_its_check(stored: tuple[DiskStore, ObjectMeta]) -> None:
    store, meta = stored
    path = store.data_path(PART, HASH, meta.version)
    with path.open("r+b") as fh:
        fh.truncate(len(DATA) - 1)
    async with CheckedFile.open(store, PART, HASH, meta) as checked:
        with pytest.raises(ReplicaCorrupt, match="ends inside block"):
            await checked.check(*checked.windows(0, len(DATA))[-1])


async def test_checked_bytes_reads_a_small_version_whole_or_refuses_it(tmp_path: Path) -> None:
    store = DiskStore(tmp_path / "node")
    small = random.Random(8).randbytes(5000)
    writer = await store.create_writer(PART, HASH)
    await writer.write(small)
    meta = await writer.commit(NewVersion("bkt", "big", format_version(2)), len(small))
    assert await checked_bytes(store, PART, HASH, meta) == small
    with store.data_path(PART, HASH, meta.version).open("r+b") as fh:
        fh.seek(4999)
        fh.write(bytes([small[4999] ^ 1]))
    with pytest.raises(ReplicaCorrupt, match="block 0"):
        await checked_bytes(store, PART, HASH, meta)


async def test_a_check_reads_only_the_blocks_its_span_touches(
    stored: tuple[DiskStore, ObjectMeta],
) -> None:
    store, meta = stored
    bad = 5 * BLOCK_SIZE + 7
    with store.data_path(PART, HASH, meta.version).open("r+b") as fh:
        fh.seek(bad)
        fh.write(bytes([DATA[bad] ^ 0x01]))
    async with CheckedFile.open(store, PART, HASH, meta) as checked:
        await checked.check(6 * BLOCK_SIZE, 3 * BLOCK_SIZE)  # blocks 6 to 8
        await checked.check(4 * BLOCK_SIZE, BLOCK_SIZE)  # block 4, just before
        with pytest.raises(ReplicaCorrupt, match="block 5"):
            await checked.check(6 * BLOCK_SIZE - 1, 2)  # the last byte of 5, the first of 6
