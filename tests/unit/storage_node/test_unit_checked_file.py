"""CheckedFile: the windows a checked answer is sent in, and the check that guards each one."""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

import pytest

from shardgate.versions import format_version
from storage_node.blocks import BLOCK_SIZE
from storage_node.disk import DiskStore
from storage_node.errors import ReplicaCorrupt
from storage_node.records import NewVersion, ObjectMeta
from storage_node.verified import WINDOW_BLOCKS, CheckedFile, checked_bytes

PART = 3
HASH = hashlib.md5(b"bkt/big", usedforsecurity=False).hexdigest()
WINDOW = WINDOW_BLOCKS * BLOCK_SIZE
DATA = random.Random(7).randbytes(2 * WINDOW + BLOCK_SIZE + 4321)


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
        (0, WINDOW, [(0, WINDOW)]),
        (0, WINDOW + 1, [(0, WINDOW), (WINDOW, 1)]),
        (WINDOW - 5, WINDOW + 5, [(WINDOW - 5, 5), (WINDOW, 5)]),
        (100, 2 * WINDOW + 7, [(100, WINDOW - 100), (WINDOW, WINDOW), (2 * WINDOW, 7)]),
    ],
)
async def test_windows_split_a_span_at_window_edges(
    stored: tuple[DiskStore, ObjectMeta], start: int, end: int, expected: list[tuple[int, int]]
) -> None:
    store, meta = stored
    async with CheckedFile.open(store, PART, HASH, meta) as checked:
        assert checked.windows(start, end) == expected


async def test_check_returns_exactly_the_bytes_of_each_window(
    stored: tuple[DiskStore, ObjectMeta],
) -> None:
    store, meta = stored
    start, end = 12345, len(DATA) - 10
    async with CheckedFile.open(store, PART, HASH, meta) as checked:
        got = b"".join([bytes(await checked.check(*w)) for w in checked.windows(start, end)])
    assert got == DATA[start:end]


async def test_a_flipped_byte_fails_only_the_window_holding_it(
    stored: tuple[DiskStore, ObjectMeta],
) -> None:
    store, meta = stored
    path = store.data_path(PART, HASH, meta.version)
    bad = WINDOW + 2 * BLOCK_SIZE + 99
    with path.open("r+b") as fh:
        fh.seek(bad)
        fh.write(bytes([DATA[bad] ^ 0x80]))
    async with CheckedFile.open(store, PART, HASH, meta) as checked:
        first, second, third = checked.windows(0, len(DATA))
        assert bytes(await checked.check(*first)) == DATA[:WINDOW]
        with pytest.raises(ReplicaCorrupt, match="block 6 fails its checksum"):
            await checked.check(*second)
        assert bytes(await checked.check(*third)) == DATA[2 * WINDOW :]


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
