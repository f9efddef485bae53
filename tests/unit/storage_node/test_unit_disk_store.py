"""DiskStore specifics: on-disk layout, no temp debris, crash leftovers never visible."""

from __future__ import annotations

import asyncio
import dataclasses
import errno
import gc
import hashlib
import os
import threading
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from shardgate.block_sums import BLOCK_SIZE, CRC32C
from shardgate.versions import format_version
from storage_node import disk, disk_io, disk_writer
from storage_node.blocks import vouch
from storage_node.disk import DiskStore
from storage_node.disk_io import (
    errors_reach_every_open_file,
    flush_behind,
    run_to_end,
    start_writeback,
)
from storage_node.errors import BadDigest, IncompleteBody, InsufficientStorage, Superseded
from storage_node.layout_upgrade import FORMAT_FILE
from storage_node.records import NewVersion, ObjectMeta, Vouched
from storage_node.store import LocalFiles
from storage_node.version_file import read_meta_at, trailer

PART = 9
HASH = hashlib.md5(b"bkt/Secret Key Name", usedforsecurity=False).hexdigest()
KEY = "Secret Key Name"
V1, V2, V3 = (format_version(n) for n in (1_000, 2_000, 3_000))


@pytest.fixture
def store(tmp_path: Path) -> DiskStore:
    return DiskStore(tmp_path / "node")


def files_under(root: Path) -> list[Path]:
    """Every file a write left, the layout's format marker aside."""
    found = (p.relative_to(root) for p in root.rglob("*") if p.is_file())
    return sorted(p for p in found if p != Path(FORMAT_FILE))


def stored_bytes(store: DiskStore, version: str) -> bytes:
    """The version's bytes as its file holds them, before the trailer (which must parse)."""
    path = store.data_path(PART, HASH, version)
    return path.read_bytes()[: read_meta_at(path).size]


def tmp_files(store: DiskStore) -> list[Path]:
    return sorted(store.tmp.iterdir())


async def put(store: DiskStore, data: bytes, version: str) -> ObjectMeta:
    writer = await store.create_writer(PART, HASH)
    try:
        await writer.write(data)
        return await writer.commit(NewVersion("bkt", KEY, version), expected_size=len(data))
    finally:
        await writer.abort()


def object_files(store: DiskStore) -> list[str]:
    return sorted(p.name for p in store.object_dir(PART, HASH).iterdir())


async def test_commit_leaves_no_temp_files(store: DiskStore) -> None:
    await put(store, b"payload", V1)
    assert tmp_files(store) == []


async def test_abort_leaves_no_temp_files(store: DiskStore) -> None:
    writer = await store.create_writer(PART, HASH)
    await writer.write(b"aban")
    await writer.write(b"doned")
    assert len(tmp_files(store)) == 1
    await writer.abort()
    assert tmp_files(store) == []
    assert files_under(store.root) == []


class CountingPool(ThreadPoolExecutor):
    """A disk pool that counts hops, and can hold every job until told to run it."""

    def __init__(self) -> None:
        super().__init__(4)
        self.hops = 0
        self.go = threading.Event()
        self.go.set()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        self.hops += 1

        def held() -> Any:
            self.go.wait(10)
            return fn(*args, **kwargs)

        return super().submit(held)


@pytest.fixture
def counted(store: DiskStore) -> Iterator[CountingPool]:
    store.pool.shutdown()
    store.pool = CountingPool()
    yield store.pool
    store.pool.go.set()
    store.pool.shutdown()


async def test_a_body_of_one_chunk_goes_to_disk_in_one_hop(
    store: DiskStore, counted: CountingPool
) -> None:
    writer = await store.create_writer(PART, HASH)
    await writer.write(b"one chunk")
    assert (counted.hops, tmp_files(store)) == (0, [])  # held: no file yet
    meta = await writer.commit(NewVersion("bkt", KEY, V1), expected_size=9)
    assert counted.hops == 1
    assert meta.etag == hashlib.md5(b"one chunk", usedforsecurity=False).hexdigest()
    assert stored_bytes(store, V1) == b"one chunk"
    assert await store.newest(PART, HASH) == meta


async def test_the_held_chunk_goes_first_when_a_second_arrives(
    store: DiskStore, counted: CountingPool
) -> None:
    writer = await store.create_writer(PART, HASH)
    for chunk in (b"first ", b"second ", b"third"):
        await writer.write(chunk)
    assert counted.hops == 2
    meta = await writer.commit(NewVersion("bkt", KEY, V1), expected_size=18)
    data = b"first second third"
    assert stored_bytes(store, V1) == data
    assert meta.etag == hashlib.md5(data, usedforsecurity=False).hexdigest()


async def test_a_chunk_given_as_its_network_reads_is_stored_as_if_whole(
    store: DiskStore, counted: CountingPool
) -> None:
    # Reads that straddle the 1 MiB blocks, as a node's PUT hands them over unjoined.
    body = os.urandom(2 * BLOCK_SIZE + 5000)
    cuts = [0, 300_000, BLOCK_SIZE - 7, BLOCK_SIZE + 70_000, 2 * BLOCK_SIZE + 1, len(body)]
    reads = [body[start:end] for start, end in pairwise(cuts)]
    writer = await store.create_writer(PART, HASH, sha256=True)
    await writer.write(*reads[:3])
    await writer.write(*reads[3:])
    assert counted.hops == 1  # the first group is held, then both go in one hop
    assert await writer.sha256() == hashlib.sha256(body).hexdigest()
    meta = await writer.commit(NewVersion("bkt", KEY, V1), expected_size=len(body))
    whole = await put(DiskStore(store.root.parent / "whole"), body, V1)
    assert stored_bytes(store, V1) == body
    assert (meta.size, meta.etag, meta.blocks) == (whole.size, whole.etag, whole.blocks)
    assert len(meta.blocks) == 3
    assert writer.head == body[: disk_writer.HEAD_BYTES]


async def test_sha256_counts_the_held_chunk(store: DiskStore) -> None:
    writer = await store.create_writer(PART, HASH, sha256=True)
    await writer.write(b"held")
    assert await writer.sha256() == hashlib.sha256(b"held").hexdigest()
    await writer.abort()
    assert files_under(store.root) == []


async def _abort_during_held_hop(store: DiskStore, counted: CountingPool) -> asyncio.Future[None]:
    """A writer whose client hung up while the disk thread, held, was about to create the file;
    returns its abort, started while the hop is still held."""
    writer = await store.create_writer(PART, HASH)
    await writer.write(b"held")
    counted.go.clear()
    writing = asyncio.ensure_future(writer.write(b"creates the file"))
    await asyncio.sleep(0.05)
    writing.cancel()
    aborting = asyncio.ensure_future(writer.abort())
    await asyncio.sleep(0.05)
    return aborting


async def test_abort_waits_for_a_hop_its_writer_stopped_awaiting(
    store: DiskStore, counted: CountingPool
) -> None:
    aborting = await _abort_during_held_hop(store, counted)
    counted.go.set()
    await aborting
    assert files_under(store.root) == []
    assert store.active_tmp == set()


async def test_an_abort_cancelled_in_turn_still_cleans_up(
    store: DiskStore, counted: CountingPool
) -> None:
    aborting = await _abort_during_held_hop(store, counted)
    aborting.cancel()  # a second cancel, as a server shutting down gives its handlers
    counted.go.set()
    store.pool.shutdown(wait=True)  # every job has run
    assert files_under(store.root) == []
    assert store.active_tmp == set()


async def test_a_disk_full_at_the_flush_leaves_nothing_and_says_507(
    store: DiskStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_open = Path.open

    def full_disk(path: Path, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        if mode == "xb":  # the tmp file is created, and every flush to it fails with ENOSPC
            real_open(path, mode).close()
            return real_open(Path("/dev/full"), "wb")
        return real_open(path, mode, *args, **kwargs)

    monkeypatch.setattr(Path, "open", full_disk)
    writer = await store.create_writer(PART, HASH)
    await writer.write(b"small")
    with pytest.raises(InsufficientStorage):
        try:
            await writer.commit(NewVersion("bkt", KEY, V1), expected_size=5)
        finally:
            await writer.abort()
    assert tmp_files(store) == []
    assert store.active_tmp == set()


async def test_superseded_commit_leaves_no_temp_files(store: DiskStore) -> None:
    await put(store, b"newer", V2)
    with pytest.raises(Superseded):
        await put(store, b"older", V1)
    assert tmp_files(store) == []
    assert object_files(store) == [f"{V2}.data"]


async def test_incomplete_body_then_abort_leaves_no_debris(store: DiskStore) -> None:
    writer = await store.create_writer(PART, HASH)
    await writer.write(b"short")
    with pytest.raises(IncompleteBody):
        await writer.commit(NewVersion("bkt", KEY, V1), expected_size=10)
    await writer.abort()
    assert files_under(store.root) == []


async def test_tombstone_leaves_no_temp_files(store: DiskStore) -> None:
    await store.write_tombstone(PART, HASH, ObjectMeta.tombstone_of("bkt", KEY, V1))
    assert tmp_files(store) == []
    assert object_files(store) == [f"{V1}.ts"]


async def test_layout_is_partition_then_hash_and_never_the_key(store: DiskStore) -> None:
    meta = await put(store, b"payload", V1)
    assert files_under(store.root) == [Path("objects", str(PART), HASH, f"{V1}.data")]
    assert not any(KEY in str(p) or "Secret" in str(p) for p in store.root.rglob("*"))
    assert store.data_path(PART, HASH, V1).read_bytes() == b"payload" + trailer(meta)


async def test_disk_store_offers_local_files(store: DiskStore) -> None:
    assert isinstance(store, LocalFiles)


async def test_newer_commit_removes_older_version_files(store: DiskStore) -> None:
    await put(store, b"one", V1)
    meta = await put(store, b"two", V2)
    assert object_files(store) == [f"{V2}.data"]
    assert await store.newest(PART, HASH) == meta


async def test_newer_tombstone_removes_older_data(store: DiskStore) -> None:
    await put(store, b"one", V1)
    await store.write_tombstone(PART, HASH, ObjectMeta.tombstone_of("bkt", KEY, V2))
    assert object_files(store) == [f"{V2}.ts"]


async def test_crash_before_commit_leaves_only_a_temp_file(store: DiskStore) -> None:
    writer = await store.create_writer(PART, HASH)
    await writer.write(b"x" * 100_000)
    await writer.write(b"y" * 100_000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        del writer
        gc.collect()
    assert await store.newest(PART, HASH) is None
    assert await store.list_partition(PART) == []
    leftovers = files_under(store.root)
    assert len(leftovers) == 1
    assert leftovers[0].parent == Path("tmp") and leftovers[0].suffix == ".tmp"


def plant(store: DiskStore, name: str, payload: bytes) -> int:
    """Write a file straight into the object's directory; its inode."""
    target = store.object_dir(PART, HASH)
    target.mkdir(parents=True, exist_ok=True)
    (target / name).write_bytes(payload)
    return (target / name).stat().st_ino


async def test_a_file_without_its_trailer_is_never_visible(store: DiskStore) -> None:
    plant(store, f"{V1}.data", b"the end of this file was lost")
    assert await store.newest(PART, HASH) is None
    assert await store.list_partition(PART) == []


async def test_a_newer_file_cut_short_does_not_hide_the_sound_version(store: DiskStore) -> None:
    damaged: list[str] = []
    store.on_damaged = lambda: damaged.append(V2)
    meta = await put(store, b"committed", V1)
    newer = await put(store, b"damaged", V2)
    plant(store, f"{V1}.data", b"committed" + trailer(meta))
    with store.data_path(PART, HASH, V2).open("r+b") as fh:
        fh.truncate(len(b"damaged") + len(trailer(newer)) - 1)
    assert await store.newest(PART, HASH) == meta
    assert await store.list_partition(PART) == [(HASH, meta)]
    # Set aside, so the replicator's digests (read from names) see this copy is missing.
    assert object_files(store) == [f"{V1}.data"]
    assert (store.root / "quarantine" / str(PART) / HASH / f"{V2}.data").exists()
    assert damaged == [V2]  # counted once, by the lookup that set it aside


async def test_a_lookup_sets_aside_only_the_damaged_file_it_read(store: DiskStore) -> None:
    meta = await put(store, b"sound", V1)
    target = store.object_dir(PART, HASH)
    damaged_inode = plant(store, f"{V2}.data", b"damaged")
    # A repair put a sound copy of V1 in place after a lookup read a damaged one: kept.
    assert not store.set_aside(target, V1, inode=damaged_inode)
    assert await store.newest(PART, HASH) == meta
    assert store.set_aside(target, V1, inode=store.data_path(PART, HASH, V1).stat().st_ino)
    assert object_files(store) == []  # the directory stays: only locked paths remove it


async def test_a_trailer_that_claims_more_bytes_than_the_file_holds_is_refused(
    store: DiskStore,
) -> None:
    meta = await put(store, b"committed", V1)
    plant(store, f"{V1}.data", b"commit" + trailer(meta))  # three bytes lost mid-file
    assert await store.newest(PART, HASH) is None


async def test_newer_commit_clears_older_orphans(store: DiskStore) -> None:
    plant(store, f"{V1}.data", b"orphan")
    await put(store, b"real", V2)
    assert object_files(store) == [f"{V2}.data"]


async def test_active_tmp_tracks_writes_in_progress(store: DiskStore) -> None:
    first = await store.create_writer(PART, HASH)
    second = await store.create_writer(PART, "b" * 32)
    await first.write(b"1")
    await first.write(b"2")
    assert len(store.active_tmp) == 2
    assert set(tmp_files(store)) < store.active_tmp  # the second has nothing on disk yet
    await first.abort()
    await second.abort()
    assert store.active_tmp == set()


async def test_active_tmp_empty_after_superseded_commit(store: DiskStore) -> None:
    await store.write_tombstone(PART, HASH, ObjectMeta.tombstone_of("bkt", KEY, V3))
    with pytest.raises(Superseded):
        await put(store, b"late", V1)
    assert store.active_tmp == set()


async def test_active_tmp_empty_after_commit(store: DiskStore) -> None:
    await put(store, b"payload", V1)
    await put(store, b"payload 2", V2)
    assert store.active_tmp == set()


async def test_restarted_store_sees_committed_objects(store: DiskStore) -> None:
    meta = await put(store, b"durable", V1)
    reopened = DiskStore(store.root)
    assert await reopened.newest(PART, HASH) == meta
    chunks = [c async for c in reopened.read(PART, HASH, meta, 0, meta.size)]
    assert b"".join(chunks) == b"durable"


async def test_store_without_fsync_has_same_results(tmp_path: Path) -> None:
    store = DiskStore(tmp_path / "nofsync", fsync=False)
    meta = await put(store, b"quick", V1)
    assert meta.etag == hashlib.md5(b"quick", usedforsecurity=False).hexdigest()
    assert object_files(store) == [f"{V1}.data"]


async def vouched_original(store: DiskStore, data: bytes) -> tuple[ObjectMeta, Vouched]:
    """Version V1 of `data`, and what a node copying it vouches for."""
    original = await put(store, data, V1)
    vouched = vouch(original)
    assert vouched is not None
    return original, vouched


async def test_a_vouched_copy_takes_the_senders_etag_once_its_block_sums_match(
    store: DiskStore,
) -> None:
    data = b"x" * (BLOCK_SIZE + 10)
    original, vouched = await vouched_original(store, data)
    # An etag nobody could compute shows the writer took the sender's word, not its own md5.
    claim = dataclasses.replace(vouched, etag="f" * 32)
    writer = await store.create_writer(PART, HASH, vouched=claim)
    await writer.write(data)
    meta = await writer.commit(NewVersion("bkt", KEY, V2), expected_size=len(data))
    assert (meta.etag, meta.blocks, meta.block_sum) == ("f" * 32, original.blocks, CRC32C)


async def test_a_vouched_copy_whose_bytes_differ_is_refused_and_leaves_nothing(
    store: DiskStore,
) -> None:
    data = b"y" * (BLOCK_SIZE + 10)
    original, vouched = await vouched_original(store, data)
    before = files_under(store.root)
    writer = await store.create_writer(PART, HASH, vouched=vouched)
    await writer.write(data[:-1] + b"z")
    with pytest.raises(BadDigest, match="vouched"):
        await writer.commit(NewVersion("bkt", KEY, V2), expected_size=len(data))
    await writer.abort()
    assert files_under(store.root) == before
    assert await store.newest(PART, HASH) == original


async def test_big_writes_are_handed_to_writeback_as_they_grow(
    store: DiskStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[tuple[int, int]] = []
    real = disk_writer.start_writeback

    def record(fd: int, offset: int, length: int) -> None:
        started.append((offset, length))
        real(fd, offset, length)

    monkeypatch.setattr(disk_writer, "start_writeback", record)
    data = bytes(range(256)) * (4096 * 21)  # 21 MiB, written in 1 MiB chunks
    writer = await store.create_writer(PART, HASH)
    for at in range(0, len(data), 1 << 20):
        await writer.write(data[at : at + (1 << 20)])
    meta = await writer.commit(NewVersion("bkt", KEY, V1), expected_size=len(data))
    step = disk_writer.WRITEBACK_BYTES
    assert started == [(0, step), (step, step)]  # the last 5 MiB are left to the fsync
    assert stored_bytes(store, meta.version) == data


async def test_no_writeback_without_fsync(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[int] = []
    monkeypatch.setattr(disk_writer, "start_writeback", lambda fd, offset, n: started.append(n))
    store = DiskStore(tmp_path / "node", fsync=False)
    await put(store, b"x" * (3 * disk_writer.WRITEBACK_BYTES), V1)
    assert started == []


class FlushPool:
    """Stands in for a store's flush pool: records each flush asked for, runs none."""

    def __init__(self) -> None:
        self.asked: list[tuple[Callable[..., object], Path, Future[None]]] = []

    def submit(self, func: Callable[..., object], path: Path) -> Future[None]:
        future: Future[None] = Future()
        self.asked.append((func, path, future))
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        pass


async def write_windows(writer: disk_writer.DiskWriter, windows: int) -> None:
    step = disk_writer.WRITEBACK_BYTES
    for _ in range(2 * windows):
        await writer.write(b"w" * (step // 2))


async def test_big_writes_are_flushed_behind_one_flush_at_a_time(store: DiskStore) -> None:
    """Each writeback window asks for a flush of the tmp file unless one is still pending, so a
    slow disk never queues more than one per upload; the commit drops one not yet started."""
    pool = FlushPool()
    store.flush_pool = pool  # type: ignore[assignment]
    writer = await store.create_writer(PART, HASH)
    await write_windows(writer, 3)
    assert [(func, path.parent) for func, path, _ in pool.asked] == [(flush_behind, store.tmp)]
    pool.asked[0][2].set_result(None)
    await write_windows(writer, 2)
    assert len(pool.asked) == 2
    assert pool.asked[1][1] == pool.asked[0][1]
    size = 5 * disk_writer.WRITEBACK_BYTES
    meta = await writer.commit(NewVersion("bkt", KEY, V1), expected_size=size)
    assert pool.asked[1][2].cancelled()
    assert stored_bytes(store, meta.version) == b"w" * size


@pytest.mark.parametrize("fsync", [False, True])
async def test_no_flush_behind_without_fsync_or_on_an_old_kernel(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fsync: bool
) -> None:
    """Before Linux 4.13 a flush on another open file could take the writer's write error."""
    monkeypatch.setattr(disk, "errors_reach_every_open_file", lambda: False)
    store = DiskStore(tmp_path / "node", fsync=fsync)
    pool = FlushPool()
    store.flush_pool = pool  # type: ignore[assignment]
    writer = await store.create_writer(PART, HASH)
    await write_windows(writer, 3)
    await writer.commit(NewVersion("bkt", KEY, V1), expected_size=3 * disk_writer.WRITEBACK_BYTES)
    store.close()
    assert pool.asked == []


async def test_an_abort_drops_a_flush_not_yet_started(store: DiskStore) -> None:
    pool = FlushPool()
    store.flush_pool = pool  # type: ignore[assignment]
    writer = await store.create_writer(PART, HASH)
    await write_windows(writer, 1)
    await writer.abort()
    assert pool.asked[0][2].cancelled()
    assert tmp_files(store) == []


@pytest.mark.parametrize("fails", [False, True])
def test_flush_behind_syncs_through_an_open_file_of_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fails: bool
) -> None:
    """So a write error stays for the writer's own fsync to report; a failed flush is quiet."""
    path = tmp_path / "f"
    synced: list[int] = []

    def fdatasync(fd: int) -> None:
        synced.append(fd)
        assert os.path.samefile(f"/proc/self/fd/{fd}", path)
        if fails:
            raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(disk_io.os, "fdatasync", fdatasync)
    with path.open("wb") as writer:
        writer.write(b"abc")
        flush_behind(path)
        assert len(synced) == 1
        assert synced[0] != writer.fileno()
    with pytest.raises(OSError) as closed:
        os.fstat(synced[0])
    assert closed.value.errno == errno.EBADF


def test_flush_behind_of_a_file_gone_does_nothing(tmp_path: Path) -> None:
    flush_behind(tmp_path / "committed-meanwhile")


def test_only_linux_from_4_13_reports_write_errors_to_every_open_file(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for system, release, expected in [
        ("linux", "6.18.44-fc-v782", True),
        ("linux", "4.13.0", True),
        ("linux", "4.9.337", False),
        ("linux", "3.10.0-1160.el7.x86_64", False),
        ("darwin", "23.1.0", False),
    ]:
        monkeypatch.setattr(disk_io.sys, "platform", system)
        monkeypatch.setattr(disk_io.platform, "release", lambda release=release: release)
        assert errors_reach_every_open_file() is expected, (system, release)


def test_start_writeback_leaves_the_file_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"abc" * 100_000)
    with path.open("r+b") as fh:
        start_writeback(fh.fileno(), 0, 300_000)
        start_writeback(fh.fileno(), 1 << 40, 10)  # past the end: nothing to do, no error
    assert path.read_bytes() == b"abc" * 100_000


@pytest.mark.parametrize("change", ["commit", "tombstone"])
async def test_a_cancelled_change_keeps_the_lock_until_its_thread_is_done(
    store: DiskStore, monkeypatch: pytest.MonkeyPatch, change: str
) -> None:
    """Otherwise a second commit of the object could run beside the first one's thread."""
    entered, release = threading.Event(), threading.Event()
    real_install = DiskStore.install

    def slow_install(self: DiskStore, *args: Any) -> None:
        entered.set()
        release.wait(5)
        real_install(self, *args)

    monkeypatch.setattr(DiskStore, "install", slow_install)
    if change == "commit":
        writer = await store.create_writer(PART, HASH)
        await writer.write(b"body")
        started = writer.commit(NewVersion("bkt", KEY, V1), expected_size=4)
    else:
        started = store.write_tombstone(PART, HASH, ObjectMeta.tombstone_of("bkt", KEY, V1))
    task = asyncio.ensure_future(started)
    await asyncio.to_thread(entered.wait, 5)
    task.cancel()
    await asyncio.sleep(0.05)
    assert store.lock(HASH).locked() and not task.done()
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not store.lock(HASH).locked()
    newest = await store.newest(PART, HASH)
    assert newest is not None and newest.version == V1  # the thread finished what it began


async def test_a_job_whose_caller_was_cancelled_still_reports_its_failure(
    caplog: pytest.LogCaptureFixture,
) -> None:
    gate = threading.Event()

    def fails() -> None:
        gate.wait(5)
        raise OSError("disk gone")

    with ThreadPoolExecutor(1) as pool:
        task = asyncio.ensure_future(run_to_end(pool.submit(fails)))
        await asyncio.sleep(0.01)
        task.cancel()
        await asyncio.sleep(0.01)
        assert not task.done()  # waiting for the thread, cancelled or not
        gate.set()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert "disk gone" in caplog.text
