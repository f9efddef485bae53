"""storage_node.sweeper.Sweeper against its contract: what goes, what stays, dry runs, metrics."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from shardgate.sweep_report import KINDS, MAX_LISTED, SweepReport
from shardgate.versions import format_version
from storage_node.disk import DiskStore
from storage_node.layout_upgrade import FORMAT_FILE
from storage_node.records import NewVersion, ObjectMeta, PendingUpload
from storage_node.sweeper import Replica, Sweeper
from storage_node.sweeper_metrics import SweeperMetrics
from storage_node.version_file import trailer

PART = 7
HASH = "a" * 32
GRACE = 100.0
TOMB_AGE = 1000.0
NOW = time.time()


def ver(seconds_ago: float) -> str:
    return format_version(int((NOW - seconds_ago) * 1e9))


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[DiskStore]:
    disk = DiskStore(tmp_path / "node", fsync=False, io_threads=4)
    yield disk
    disk.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def sweeper(store: DiskStore, clock: Clock, registry: CollectorRegistry) -> Sweeper:
    metrics = SweeperMetrics.create(registry)
    return Sweeper(store, grace=GRACE, tombstone_age=TOMB_AGE, metrics=metrics, clock=clock)


def files(store: DiskStore) -> list[str]:
    """Every file under the data directory, the layout's format marker aside."""
    found = (str(p.relative_to(store.root)) for p in store.root.rglob("*") if p.is_file())
    return sorted(name for name in found if name != FORMAT_FILE)


def age(path: Path, seconds: float) -> None:
    os.utime(path, (NOW - seconds, NOW - seconds))


async def put(
    store: DiskStore,
    version: str,
    data: bytes = b"payload",
    *,
    part: int = PART,
    obj_hash: str = HASH,
    bucket: str = "bkt",
    key: str = "k",
) -> ObjectMeta:
    writer = await store.create_writer(part, obj_hash)
    try:
        await writer.write(data)
        meta = await writer.commit(NewVersion(bucket, key, version))
    finally:
        await writer.abort()
    # Files are dated NOW, not whenever the test happens to run, so clock.now decides ages.
    for path in store.object_dir(part, obj_hash).glob(f"{version}.*"):
        age(path, 0)
    return meta


def plant_older(target: Path, version: str, body: bytes) -> Path:
    """A readable version file put straight into the object's directory."""
    path = target / f"{version}.data"
    path.write_bytes(body + trailer(ObjectMeta("bkt", "k", version, len(body), "e" * 32)))
    return path


async def pending(store: DiskStore, upload_id: str, data: bytes, commit_by: float) -> None:
    await store.uploads.claim(upload_id, commit_by)
    writer = await store.create_writer(PART, HASH)
    await writer.write(data)
    fields = (upload_id, "bkt", "k", PART, HASH, 0, "", None, "text/plain", "", NOW)
    await writer.commit_pending(PendingUpload(*fields, commit_by=commit_by))
    store.uploads.release(upload_id)


def sizes(store: DiskStore, names: Sequence[str]) -> int:
    return sum((store.root / n).stat().st_size for n in names)


def sample(registry: CollectorRegistry, name: str, kind: str | None = None) -> float | None:
    return registry.get_sample_value(name, {"kind": kind} if kind else {})


async def test_old_idle_tmp_goes_young_and_active_stay(
    store: DiskStore, sweeper: Sweeper, clock: Clock
) -> None:
    for name, body in (("dead.tmp", b"x" * 11), ("fresh.tmp", b"y"), ("notes.txt", b"z")):
        (store.tmp / name).write_bytes(body)
    age(store.tmp / "dead.tmp", GRACE + 50)
    age(store.tmp / "notes.txt", GRACE + 50)  # not the sweeper's pattern
    writer = await store.create_writer(PART, HASH)  # a write in progress, however old
    await writer.write(b"stream")
    await writer.write(b"ing")  # the second chunk has the file created
    (active,) = store.active_tmp
    age(active, 10 * GRACE)
    report = await sweeper.sweep(dry_run=False)
    assert report.files == {**dict.fromkeys(KINDS, 0), "tmp": 1}
    assert report.bytes["tmp"] == 11
    assert report.removed == ["tmp/dead.tmp"]
    assert files(store) == sorted(["tmp/fresh.tmp", "tmp/notes.txt", f"tmp/{active.name}"])
    await writer.write(b" more")
    await writer.commit(NewVersion("bkt", "k", ver(0)))
    assert (await store.newest(PART, HASH)) is not None


async def test_crash_debris_in_object_dir_goes_as_tmp(store: DiskStore, sweeper: Sweeper) -> None:
    v0, v1, v2 = ver(400), ver(300), ver(200)
    await put(store, v1, b"current")
    target = store.object_dir(PART, HASH)
    plant_older(target, v0, b"older-data")  # a drop_older cut short
    (target / f"{v2}.data").write_bytes(b"newer, its end lost")  # damaged, not debris
    for name in (f"{v0}.data", f"{v2}.data", f"{v1}.data"):
        age(target / name, GRACE + 1)
    debris = [f"objects/{PART}/{HASH}/{v0}.data"]
    expected_bytes = sizes(store, debris)
    report = await sweeper.sweep(dry_run=False)
    assert sorted(report.removed) == sorted(debris)
    assert report.files["tmp"] == 1 and report.total_files == 1
    assert report.bytes["tmp"] == expected_bytes
    assert sorted(p.name for p in target.iterdir()) == [f"{v1}.data"]
    assert (store.root / "quarantine" / str(PART) / HASH / f"{v2}.data").exists()
    newest = await store.newest(PART, HASH)
    assert newest is not None and newest.version == v1


async def test_old_tombstone_goes_with_its_directory(store: DiskStore, sweeper: Sweeper) -> None:
    await put(store, ver(TOMB_AGE + 600))
    tomb = ver(TOMB_AGE + 500)
    await store.write_tombstone(PART, HASH, ObjectMeta.tombstone_of("bkt", "k", tomb))
    young_hash = "b" * 32
    await put(store, ver(30), obj_hash=young_hash)
    await store.write_tombstone(PART, young_hash, ObjectMeta.tombstone_of("bkt", "k", ver(20)))
    ts = f"objects/{PART}/{HASH}/{tomb}.ts"
    ts_bytes = sizes(store, [ts])
    report = await sweeper.sweep(dry_run=False)
    assert report.removed == [ts]
    assert report.files == {**dict.fromkeys(KINDS, 0), "tombstone": 1}
    assert report.bytes["tombstone"] == ts_bytes
    assert not store.object_dir(PART, HASH).exists()
    assert files(store) == [f"objects/{PART}/{young_hash}/{ver(20)}.ts"]


async def test_reclaiming_a_tombstone_never_resurrects_an_older_version(
    store: DiskStore, sweeper: Sweeper
) -> None:
    tomb = ver(TOMB_AGE + 500)
    await store.write_tombstone(PART, HASH, ObjectMeta.tombstone_of("bkt", "k", tomb))
    target = store.object_dir(PART, HASH)
    old = ver(TOMB_AGE + 900)  # leftover of a drop_older cut short, recently touched on disk
    (target / f"{old}.data").write_bytes(
        b"deleted bytes" + trailer(ObjectMeta("bkt", "k", old, 13, "e" * 32))
    )
    await sweeper.sweep(dry_run=False)
    newest = await store.newest(PART, HASH)
    assert newest is None or newest.tombstone


async def test_empty_object_dir_is_removed(store: DiskStore, sweeper: Sweeper) -> None:
    empty = store.object_dir(PART, "c" * 32)
    empty.mkdir(parents=True)
    dry = await sweeper.sweep(dry_run=True)
    assert empty.exists() and dry.total_files == 0
    report = await sweeper.sweep(dry_run=False)
    assert not empty.exists() and report.total_files == 0


async def test_object_dirs_change_only_under_the_commit_lock(
    store: DiskStore, sweeper: Sweeper
) -> None:
    await put(store, ver(300))
    target = store.object_dir(PART, HASH)
    orphan = plant_older(target, ver(400), b"orphan")
    age(orphan, GRACE + 1)
    async with store.lock(HASH):
        task = asyncio.create_task(sweeper.sweep(dry_run=False))
        await asyncio.sleep(0.2)
        assert orphan.exists() and not task.done()
    report = await task
    assert not orphan.exists() and report.files["tmp"] == 1


async def test_pending_upload_goes_after_commit_by_plus_grace(
    store: DiskStore, sweeper: Sweeper, clock: Clock
) -> None:
    commit_by = NOW + 500
    await pending(store, "up1", b"direct body", commit_by)
    names = ["pending/up1.data", "pending/up1.json"]
    total = sizes(store, names)
    clock.now = commit_by + GRACE - 1
    assert (await sweeper.sweep(dry_run=False)).total_files == 0
    assert files(store) == names
    clock.now = commit_by + GRACE
    report = await sweeper.sweep(dry_run=False)
    assert sorted(report.removed) == names
    assert report.files == {**dict.fromkeys(KINDS, 0), "pending": 2}
    assert report.bytes["pending"] == total
    assert files(store) == []


async def test_active_pending_upload_is_never_swept(
    store: DiskStore, sweeper: Sweeper, clock: Clock
) -> None:
    await store.uploads.claim("busy", NOW - 5000)  # deadline long past, body still arriving
    writer = await store.create_writer(PART, HASH)
    await writer.write(b"sl")
    await writer.write(b"ow")
    (tmp,) = store.active_tmp
    age(tmp, 10 * GRACE)
    age(store.uploads.state_file("busy"), 10 * GRACE)
    report = await sweeper.sweep(dry_run=False)
    assert report.total_files == 0
    assert files(store) == sorted(["pending/busy.json", f"tmp/{tmp.name}"])
    store.uploads.release("busy")
    await writer.abort()
    report = await sweeper.sweep(dry_run=False)
    assert report.removed == ["pending/busy.json"] and report.files["pending"] == 1
    assert files(store) == []


async def test_pending_without_deadline_ages_by_newest_mtime(
    store: DiskStore, sweeper: Sweeper
) -> None:
    await pending(store, "nodl", b"abc", 0.0)
    age(store.uploads.data("nodl"), 5 * GRACE)
    age(store.uploads.state_file("nodl"), GRACE - 10)  # the newest file is still young
    assert (await sweeper.sweep(dry_run=False)).total_files == 0
    age(store.uploads.state_file("nodl"), GRACE + 1)
    report = await sweeper.sweep(dry_run=False)
    assert sorted(report.removed) == ["pending/nodl.data", "pending/nodl.json"]
    assert files(store) == []


async def build_debris(store: DiskStore, clock: Clock) -> None:
    (store.tmp / "a.tmp").write_bytes(b"a" * 5)
    age(store.tmp / "a.tmp", GRACE + 1)
    await pending(store, "p1", b"b" * 9, NOW - 2 * GRACE)
    await put(store, ver(TOMB_AGE + 600), b"c" * 3)
    target = store.object_dir(PART, HASH)
    age(plant_older(target, ver(TOMB_AGE + 650), b"d" * 7), GRACE + 1)
    await put(store, ver(TOMB_AGE + 500), b"e" * 4, obj_hash="d" * 32)
    await store.write_tombstone(
        PART, "d" * 32, ObjectMeta.tombstone_of("bkt", "k", ver(TOMB_AGE + 400))
    )


async def test_dry_run_reports_exactly_what_a_real_run_removes(
    store: DiskStore, sweeper: Sweeper, clock: Clock, registry: CollectorRegistry
) -> None:
    await build_debris(store, clock)
    before = files(store)
    dry = await sweeper.sweep(dry_run=True)
    assert files(store) == before
    assert dry.dry_run and dry.total_files == 5
    assert {k: v for k, v in dry.files.items() if v} == {"tmp": 2, "pending": 2, "tombstone": 1}
    for kind in KINDS:
        assert sample(registry, "shardgate_sweeper_reclaimed_files_total", kind) == 0
    assert sample(registry, "shardgate_sweeper_last_run_timestamp_seconds") == 0
    assert sample(registry, "shardgate_sweeper_run_duration_seconds_count") == 0
    real = await sweeper.sweep(dry_run=False)
    assert not real.dry_run
    assert (real.files, real.bytes, real.errors) == (dry.files, dry.bytes, 0)
    assert sorted(real.removed) == sorted(dry.removed)
    assert sorted(set(before) - set(files(store))) == sorted(dry.removed)
    for kind in KINDS:
        value = sample(registry, "shardgate_sweeper_reclaimed_files_total", kind)
        assert value == real.files[kind]
        assert sample(registry, "shardgate_sweeper_reclaimed_bytes_total", kind) == real.bytes[kind]
    assert sample(registry, "shardgate_sweeper_last_run_timestamp_seconds") == clock.now
    assert sample(registry, "shardgate_sweeper_run_duration_seconds_count") == 1
    assert sample(registry, "shardgate_sweeper_errors_total") == 0


async def test_failed_removal_counts_an_error_not_a_file(
    store: DiskStore, sweeper: Sweeper, registry: CollectorRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    (store.tmp / "x.tmp").write_bytes(b"xyz")
    age(store.tmp / "x.tmp", GRACE + 1)

    def refuse(paths: Sequence[Path]) -> None:
        raise PermissionError("read-only")

    monkeypatch.setattr(sweeper, "_unlink", refuse)
    report = await sweeper.sweep(dry_run=False)
    assert (report.errors, report.total_files, report.removed) == (1, 0, [])
    assert sample(registry, "shardgate_sweeper_errors_total") == 1
    assert sample(registry, "shardgate_sweeper_reclaimed_files_total", "tmp") == 0
    assert files(store) == ["tmp/x.tmp"]


async def test_candidates_page_whole_partitions(
    store: DiskStore, sweeper: Sweeper, clock: Clock
) -> None:
    clock.now = NOW + GRACE + 5
    v = ver(50)
    await put(store, v, part=1, obj_hash="1" * 32, key="p1a")
    await put(store, v, part=1, obj_hash="2" * 32, key="p1b")
    await put(store, v, part=3, obj_hash="3" * 32, key="p3")
    await put(store, v, part=3, obj_hash="4" * 32, key="gone")
    await store.write_tombstone(3, "4" * 32, ObjectMeta.tombstone_of("bkt", "gone", ver(40)))
    await put(store, v, part=5, obj_hash="5" * 32, key="young")
    os.utime(store.object_dir(5, "5" * 32) / f"{v}.data", (clock.now, clock.now))
    await put(store, v, part=12, obj_hash="6" * 32, key="p12")
    page, nxt = await sweeper.candidates(-1, 1)
    assert [r.key for r in page] == ["p1a", "p1b"] and nxt == 1
    assert page[0] == Replica(1, "1" * 32, "bkt", "p1a", v)
    page, nxt = await sweeper.candidates(nxt, 1)
    assert [r.key for r in page] == ["p3"] and nxt == 3
    page, nxt = await sweeper.candidates(nxt, 1)
    assert [r.key for r in page] == ["p12"] and nxt is None
    page, nxt = await sweeper.candidates(-1, 100)
    assert [r.key for r in page] == ["p1a", "p1b", "p3", "p12"] and nxt is None
    assert await sweeper.candidates(12, 100) == ([], None)


async def test_discard_only_the_same_old_version(
    store: DiskStore, sweeper: Sweeper, clock: Clock, registry: CollectorRegistry
) -> None:
    clock.now = NOW + GRACE + 5
    v1, v2 = ver(60), ver(50)
    await put(store, v1, b"orphan!", obj_hash="1" * 32, key="o")
    await put(store, v1, b"part", obj_hash="2" * 32, bucket="_parts", key="u/1")
    await put(store, v1, obj_hash="3" * 32, key="replaced")
    await put(store, v2, obj_hash="3" * 32, key="replaced")
    await put(store, v1, obj_hash="4" * 32, key="young")
    os.utime(store.object_dir(PART, "4" * 32) / f"{v1}.data", (clock.now, clock.now))
    await put(store, v1, obj_hash="5" * 32, key="actual")
    orphan_bytes = sizes(store, [f"objects/{PART}/{'1' * 32}/{v1}.data"])
    part_bytes = sizes(store, [f"objects/{PART}/{'2' * 32}/{v1}.data"])
    replicas = [
        Replica(PART, "1" * 32, "bkt", "o", v1),
        Replica(PART, "2" * 32, "_parts", "u/1", v1),
        Replica(PART, "3" * 32, "bkt", "replaced", v1),  # a newer version arrived since
        Replica(PART, "4" * 32, "bkt", "young", v1),  # rewritten within the grace age
        Replica(PART, "5" * 32, "bkt", "other-key", v1),  # not the key at this hash
        Replica(PART, "6" * 32, "bkt", "missing", v1),
    ]
    before = files(store)
    dry = await sweeper.discard(replicas, dry_run=True)
    assert files(store) == before
    assert sample(registry, "shardgate_sweeper_reclaimed_files_total", "orphan") == 0
    report = await sweeper.discard(replicas, dry_run=False)
    assert (dry.files, dry.bytes, dry.removed) == (report.files, report.bytes, report.removed)
    assert report.files == {**dict.fromkeys(KINDS, 0), "orphan": 1, "parts": 1}
    assert report.bytes["orphan"] == orphan_bytes and report.bytes["parts"] == part_bytes
    assert report.removed == [
        f"objects/{PART}/{'1' * 32}/{v1}.data",
        f"objects/{PART}/{'2' * 32}/{v1}.data",
    ]
    assert not store.object_dir(PART, "1" * 32).exists()
    assert not store.object_dir(PART, "2" * 32).exists()
    assert sorted(set(before) - set(files(store))) == sorted(report.removed)
    assert sample(registry, "shardgate_sweeper_reclaimed_files_total", "parts") == 1
    assert sample(registry, "shardgate_sweeper_reclaimed_bytes_total", "orphan") == orphan_bytes


async def test_discard_spares_a_tombstoned_replica(store: DiskStore, sweeper: Sweeper) -> None:
    v = ver(5000)
    await put(store, ver(6000))
    await store.write_tombstone(PART, HASH, ObjectMeta.tombstone_of("bkt", "k", v))
    report = await sweeper.discard([Replica(PART, HASH, "bkt", "k", v)], dry_run=False)
    assert report.total_files == 0 and files(store) == [f"objects/{PART}/{HASH}/{v}.ts"]


async def test_discard_dry_run_matches_real_run_for_a_repeated_replica(
    store: DiskStore, sweeper: Sweeper, clock: Clock
) -> None:
    clock.now = NOW + GRACE + 5
    await put(store, ver(60))
    twice = [Replica(PART, HASH, "bkt", "k", ver(60))] * 2
    dry = await sweeper.discard(twice, dry_run=True)
    real = await sweeper.discard(twice, dry_run=False)
    assert real.files["orphan"] == 1 and files(store) == []
    assert (dry.files, dry.bytes, dry.removed) == (real.files, real.bytes, real.removed)


def race_on(store: DiskStore, monkeypatch: pytest.MonkeyPatch, victim: Path, newer: str) -> None:
    """A commit of `newer` (and its drop_older) lands between a directory listing and the read
    of the newest version it named, as concurrent uploads do when the sweeper looks unlocked."""
    original = store.versions_of
    fired = False

    def versions(target: Path) -> tuple[set[str], set[str]]:
        nonlocal fired
        listing = original(target)
        if target == victim and not fired:
            fired = True
            for path in victim.iterdir():
                path.unlink()
            meta = ObjectMeta("bkt", "k", newer, 3, "e" * 32)
            (victim / f"{newer}.data").write_bytes(b"new" + trailer(meta))
        return listing

    monkeypatch.setattr(store, "versions_of", versions)


async def test_sweep_survives_a_concurrent_overwrite(
    store: DiskStore, sweeper: Sweeper, monkeypatch: pytest.MonkeyPatch
) -> None:
    await put(store, ver(300))
    (store.tmp / "dead.tmp").write_bytes(b"dead")
    age(store.tmp / "dead.tmp", GRACE + 1)
    race_on(store, monkeypatch, store.object_dir(PART, HASH), ver(1))
    report = await sweeper.sweep(dry_run=False)
    assert report.removed == ["tmp/dead.tmp"]


async def test_candidates_survive_a_concurrent_overwrite(
    store: DiskStore, sweeper: Sweeper, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock.now = NOW + GRACE + 5
    await put(store, ver(300), obj_hash="1" * 32, key="raced")
    await put(store, ver(300), obj_hash="2" * 32, key="steady")
    race_on(store, monkeypatch, store.object_dir(PART, "1" * 32), ver(1))
    page, nxt = await sweeper.candidates(-1, 100)
    assert [r.key for r in page if r.key == "steady"] == ["steady"] and nxt is None


def test_report_lists_at_most_max_listed_but_counts_all() -> None:
    report = SweepReport(False)
    report.add("tmp", [f"t{i}" for i in range(MAX_LISTED - 1)], 10)
    report.add("orphan", ["a", "b", "c"], 7)
    assert len(report.removed) == MAX_LISTED and report.removed[-1] == "a"
    assert (report.total_files, report.total_bytes) == (MAX_LISTED + 2, 17)
    other = SweepReport(False, errors=2)
    other.add("parts", ["p"], 3)
    report.merge(other)
    assert len(report.removed) == MAX_LISTED
    assert (report.files["parts"], report.bytes["parts"], report.errors) == (1, 3, 2)
    again = SweepReport.from_json(report.to_json())
    assert again == report
    assert report.to_json()["kinds"]["orphan"] == {"files": 3, "bytes": 7}
    assert Replica.from_json(Replica(3, "h", "b", "k/1", "v").to_json()) == Replica(
        3, "h", "b", "k/1", "v"
    )
