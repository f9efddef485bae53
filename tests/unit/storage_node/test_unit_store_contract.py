"""The Store contract (storage_node/store.py), run against both the disk and the memory store."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from shardgate.versions import format_version
from storage_node.disk import DiskStore
from storage_node.errors import IncompleteBody, Superseded
from storage_node.memory import MemoryStore
from storage_node.records import NewVersion, ObjectMeta
from storage_node.store import Store

PART = 5
HASH = "a" * 32
V1, V2, V3 = (format_version(n) for n in (1_000, 2_000, 3_000))


@pytest.fixture(params=["disk", "memory"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    yield DiskStore(tmp_path / "node") if request.param == "disk" else MemoryStore()


def md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def new_version(version: str, key: str = "k") -> NewVersion:
    return NewVersion("bkt", key, version, "image/png", {"owner": "ann"})


async def put(
    store: Store,
    data: bytes,
    version: str,
    *,
    partition: int = PART,
    obj_hash: str = HASH,
    chunk: int = 64 * 1024,
) -> ObjectMeta:
    writer = await store.create_writer(partition, obj_hash)
    try:
        for i in range(0, len(data), chunk):
            await writer.write(data[i : i + chunk])
        assert writer.bytes_written == len(data)
        return await writer.commit(new_version(version), expected_size=len(data))
    finally:
        await writer.abort()


async def read_all(store: Store, meta: ObjectMeta, start: int = 0, end: int | None = None) -> bytes:
    stop = meta.size if end is None else end
    return b"".join([c async for c in store.read(PART, HASH, meta, start, stop)])


async def tombstone(store: Store, version: str, obj_hash: str = HASH) -> ObjectMeta:
    return await store.write_tombstone(PART, obj_hash, ObjectMeta.tombstone_of("bkt", "k", version))


async def test_commit_then_newest_and_read_return_the_same_bytes(store: Store) -> None:
    data = os.urandom(700_000)
    meta = await put(store, data, V1)
    assert (meta.size, meta.etag, meta.version) == (len(data), md5(data), V1)
    assert (meta.content_type, dict(meta.user_meta)) == ("image/png", {"owner": "ann"})
    assert await store.newest(PART, HASH) == meta
    assert await read_all(store, meta) == data


async def test_a_chunk_written_as_several_reads_reads_back_whole(store: Store) -> None:
    data = os.urandom(1_500_000)
    writer = await store.create_writer(PART, HASH)
    try:
        await writer.write(data[:1000], data[1000:700_000], data[700_000:1_100_000])
        await writer.write(data[1_100_000:])
        meta = await writer.commit(new_version(V1), expected_size=len(data))
    finally:
        await writer.abort()
    assert (meta.size, meta.etag) == (len(data), md5(data))
    assert await read_all(store, meta) == data


async def test_empty_object(store: Store) -> None:
    meta = await put(store, b"", V1)
    assert (meta.size, meta.etag) == (0, md5(b""))
    assert await read_all(store, meta) == b""


@pytest.mark.parametrize(
    ("start", "end"),
    [(0, 1), (10, 20), (0, 600_000), (262_000, 263_000), (599_990, 600_000), (300_000, 300_000)],
)
async def test_read_ranges(store: Store, start: int, end: int) -> None:
    data = os.urandom(600_000)
    meta = await put(store, data, V1)
    assert await read_all(store, meta, start, end) == data[start:end]


async def test_newer_version_wins_and_older_commit_is_superseded(store: Store) -> None:
    meta2 = await put(store, b"two", V2)
    with pytest.raises(Superseded) as err:
        await put(store, b"one", V1)
    assert err.value.newest == V2
    assert await store.newest(PART, HASH) == meta2
    assert await read_all(store, meta2) == b"two"


async def test_newer_commit_replaces_older(store: Store) -> None:
    await put(store, b"one", V1)
    meta2 = await put(store, b"two!", V2)
    assert await store.newest(PART, HASH) == meta2
    assert await read_all(store, meta2) == b"two!"


async def test_same_version_same_bytes_is_idempotent(store: Store) -> None:
    first = await put(store, b"same", V1)
    again = await put(store, b"same", V1)
    assert again == first
    assert await store.newest(PART, HASH) == first
    assert await store.list_partition(PART) == [(HASH, first)]


async def test_same_version_other_bytes_is_superseded(store: Store) -> None:
    first = await put(store, b"same", V1)
    with pytest.raises(Superseded):
        await put(store, b"different", V1)
    assert await read_all(store, first) == b"same"


async def test_newer_tombstone_hides_data(store: Store) -> None:
    await put(store, b"data", V1)
    await tombstone(store, V2)
    newest = await store.newest(PART, HASH)
    assert newest is not None
    assert (newest.tombstone, newest.version, newest.size) == (True, V2, 0)


async def test_older_tombstone_is_superseded(store: Store) -> None:
    meta = await put(store, b"data", V2)
    with pytest.raises(Superseded):
        await tombstone(store, V1)
    assert await store.newest(PART, HASH) == meta
    assert await read_all(store, meta) == b"data"


async def test_tombstone_is_idempotent(store: Store) -> None:
    first = await tombstone(store, V1)
    assert await tombstone(store, V1) == first
    assert await store.newest(PART, HASH) == first


async def test_newer_data_beats_tombstone(store: Store) -> None:
    await tombstone(store, V1)
    meta = await put(store, b"back again", V2)
    assert await store.newest(PART, HASH) == meta
    assert await read_all(store, meta) == b"back again"


async def test_data_same_version_as_tombstone_is_superseded(store: Store) -> None:
    await tombstone(store, V1)
    with pytest.raises(Superseded):
        await put(store, b"late", V1)
    newest = await store.newest(PART, HASH)
    assert newest is not None and newest.tombstone


async def test_discard_removes_exactly_that_version(store: Store) -> None:
    meta = await put(store, b"data", V2)
    assert await store.discard(PART, HASH, V1) is False
    assert await store.discard(PART, HASH, V3) is False
    assert await store.newest(PART, HASH) == meta
    assert await store.discard(PART, HASH, V2) is True
    assert await store.newest(PART, HASH) is None
    assert await store.discard(PART, HASH, V2) is False


async def test_discard_never_removes_a_tombstone(store: Store) -> None:
    await tombstone(store, V1)
    assert await store.discard(PART, HASH, V1) is False
    newest = await store.newest(PART, HASH)
    assert newest is not None and newest.tombstone


async def test_list_partition_gives_newest_per_hash(store: Store) -> None:
    b_hash, c_hash = "b" * 32, "c" * 32
    await put(store, b"a1", V1)
    newest_a = await put(store, b"a2", V2)
    newest_b = await put(store, b"b1", V1, obj_hash=b_hash)
    await put(store, b"c1", V1, obj_hash=c_hash)
    newest_c = await tombstone(store, V2, obj_hash=c_hash)
    other = await put(store, b"elsewhere", V3, partition=PART + 1)
    listing = await store.list_partition(PART)
    assert listing == [(HASH, newest_a), (b_hash, newest_b), (c_hash, newest_c)]
    assert await store.list_partition(PART + 1) == [(HASH, other)]
    assert await store.list_partition(PART + 2) == []


async def test_expected_size_mismatch_is_incomplete_and_invisible(store: Store) -> None:
    writer = await store.create_writer(PART, HASH)
    await writer.write(b"only part of it")
    with pytest.raises(IncompleteBody):
        await writer.commit(new_version(V1), expected_size=1_000)
    await writer.abort()
    assert await store.newest(PART, HASH) is None
    assert await store.list_partition(PART) == []


async def test_abort_leaves_nothing_visible(store: Store) -> None:
    writer = await store.create_writer(PART, HASH)
    await writer.write(b"x" * 1000)
    await writer.abort()
    assert await store.newest(PART, HASH) is None
    assert await store.list_partition(PART) == []


async def test_abort_after_commit_is_harmless(store: Store) -> None:
    writer = await store.create_writer(PART, HASH)
    await writer.write(b"kept")
    meta = await writer.commit(new_version(V1))
    await writer.abort()
    assert await store.newest(PART, HASH) == meta
    assert await read_all(store, meta) == b"kept"


async def test_uncommitted_writer_does_not_hide_current_version(store: Store) -> None:
    meta = await put(store, b"current", V1)
    writer = await store.create_writer(PART, HASH)
    await writer.write(b"in flight")
    assert await store.newest(PART, HASH) == meta
    await writer.abort()
    assert await read_all(store, meta) == b"current"


async def test_concurrent_commits_leave_the_newest(store: Store) -> None:
    order = [3, 1, 5, 2, 4]
    writers = []
    for n in order:
        writer = await store.create_writer(PART, HASH)
        await writer.write(bytes([n]) * 10)
        writers.append(writer)
    results = await asyncio.gather(
        *(w.commit(new_version(format_version(n))) for w, n in zip(writers, order, strict=True)),
        return_exceptions=True,
    )
    for writer in writers:
        await writer.abort()
    assert all(isinstance(r, ObjectMeta | Superseded) for r in results)
    newest = await store.newest(PART, HASH)
    assert newest is not None and newest.version == format_version(5)
    assert await read_all(store, newest) == bytes([5]) * 10


async def test_usage_is_sane(store: Store) -> None:
    usage = await store.usage()
    assert 0 <= usage.free_bytes <= usage.total_bytes
    assert usage.total_bytes > 0
