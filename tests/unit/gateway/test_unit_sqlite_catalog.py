"""gateway.sqlite_catalog.SqliteCatalog: buckets, last-writer-wins objects, repairs, WAL."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.catalog import BucketRecord, ObjectRecord, Repair
from gateway.sqlite_catalog import SqliteCatalog
from shardgate.versions import format_version

V1, V2, V3 = (format_version(n) for n in (1_000, 2_000, 3_000))


@pytest.fixture
async def catalog(tmp_path: Path) -> AsyncIterator[SqliteCatalog]:
    cat = SqliteCatalog(tmp_path / "c.sqlite3")
    await cat.open()
    await cat.put_bucket(BucketRecord("photos", created=1_700_000_000.0))
    yield cat
    await cat.close()


def record(version: str, key: str = "a/b.jpg", *, size: int = 10, etag: str = "e") -> ObjectRecord:
    return ObjectRecord(
        bucket="photos",
        key=key,
        version=version,
        size=size,
        etag=etag * 32 if len(etag) == 1 else etag,
        content_type="image/jpeg",
        replicas=("n1", "n2", "n3"),
        user_meta={"camera": "x100", "ünï": "çødé"},
    )


async def test_open_creates_the_file_and_close_keeps_data(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "c.sqlite3"
    first = SqliteCatalog(path)
    await first.open()
    await first.ping()
    await first.put_bucket(BucketRecord("photos", created=1.0))
    assert await first.commit_object(record(V1))
    await first.close()
    assert path.exists()

    second = SqliteCatalog(path)
    await second.open()
    try:
        assert await second.get_object("photos", "a/b.jpg") == record(V1)
    finally:
        await second.close()


async def test_wal_mode_is_on(catalog: SqliteCatalog, tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / "c.sqlite3") as other:
        (mode,) = other.execute("PRAGMA journal_mode").fetchone()
    assert mode == "wal"


async def test_put_bucket_creates_then_updates_but_keeps_created(catalog: SqliteCatalog) -> None:
    created = await catalog.put_bucket(
        BucketRecord("docs", created=100.0, max_object_size=5, allowed_types=("text/plain",))
    )
    assert created == BucketRecord("docs", 100.0, 5, ("text/plain",))
    updated = await catalog.put_bucket(
        BucketRecord(
            "docs",
            created=999.0,
            max_object_size=None,
            allowed_types=("image/png", "image/jpeg"),
            public_read=True,
            cors_origins=("https://app.example",),
            mirror=True,
        )
    )
    expected = BucketRecord(
        "docs", 100.0, None, ("image/png", "image/jpeg"), True, ("https://app.example",), True
    )
    assert updated == expected
    assert await catalog.get_bucket("docs") == expected


async def test_get_missing_bucket_and_object(catalog: SqliteCatalog) -> None:
    assert await catalog.get_bucket("nope") is None
    assert await catalog.get_object("photos", "nope") is None


async def test_commit_then_get_returns_an_equal_record(catalog: SqliteCatalog) -> None:
    rec = record(V1)
    assert await catalog.commit_object(rec) is True
    got = await catalog.get_object("photos", "a/b.jpg")
    assert got == rec
    assert got is not None and isinstance(got.replicas, tuple)
    assert dict(got.user_meta) == {"camera": "x100", "ünï": "çødé"}


async def test_newer_commit_replaces_older(catalog: SqliteCatalog) -> None:
    await catalog.commit_object(record(V1, size=1))
    assert await catalog.commit_object(record(V2, size=2, etag="f")) is True
    assert await catalog.get_object("photos", "a/b.jpg") == record(V2, size=2, etag="f")


async def test_older_commit_never_replaces_newer(catalog: SqliteCatalog) -> None:
    await catalog.commit_object(record(V2, size=2))
    assert await catalog.commit_object(record(V1, size=1, etag="f")) is False
    assert await catalog.get_object("photos", "a/b.jpg") == record(V2, size=2)


async def test_recommitting_the_current_version_changes_nothing(catalog: SqliteCatalog) -> None:
    await catalog.commit_object(record(V1))
    assert await catalog.commit_object(record(V1, etag="f")) is False
    assert await catalog.get_object("photos", "a/b.jpg") == record(V1)


async def test_remove_only_when_delete_is_newer(catalog: SqliteCatalog) -> None:
    await catalog.commit_object(record(V2))
    assert await catalog.remove_object("photos", "a/b.jpg", V1) is False
    assert await catalog.remove_object("photos", "a/b.jpg", V2) is False
    assert await catalog.get_object("photos", "a/b.jpg") == record(V2)
    assert await catalog.remove_object("photos", "a/b.jpg", V3) is True
    assert await catalog.get_object("photos", "a/b.jpg") is None
    assert await catalog.remove_object("photos", "a/b.jpg", V3) is False


async def test_remove_touches_only_its_key(catalog: SqliteCatalog) -> None:
    await catalog.commit_object(record(V1, key="keep"))
    await catalog.commit_object(record(V1, key="drop"))
    await catalog.remove_object("photos", "drop", V2)
    assert await catalog.get_object("photos", "keep") == record(V1, key="keep")
    assert await catalog.get_object("photos", "drop") is None


async def test_older_put_after_newer_delete_stays_deleted(catalog: SqliteCatalog) -> None:
    await catalog.commit_object(record(V1))
    assert await catalog.remove_object("photos", "a/b.jpg", V3) is True
    assert await catalog.commit_object(record(V2)) is False
    assert await catalog.get_object("photos", "a/b.jpg") is None


async def test_repairs_are_kept_in_order(catalog: SqliteCatalog) -> None:
    first = [
        Repair("photos", "a/b.jpg", V1, "n4", "missed"),
        Repair("photos", "a/b.jpg", V1, "n2", "handoff:n5"),
    ]
    later = [Repair("photos", "a/b.jpg", V2, "n3", "missed-delete")]
    await catalog.commit_object(record(V1), first)
    await catalog.remove_object("photos", "a/b.jpg", V2, later)
    assert await catalog.pending_repairs(10) == [*first, *later]
    assert await catalog.pending_repairs(2) == first


async def test_concurrent_commits_all_land(catalog: SqliteCatalog) -> None:
    keys = [f"k/{i:03d}" for i in range(100)]
    results = await asyncio.gather(*(catalog.commit_object(record(V1, key=k)) for k in keys))
    assert results == [True] * len(keys)
    stored = await asyncio.gather(*(catalog.get_object("photos", k) for k in keys))
    assert stored == [record(V1, key=k) for k in keys]


async def test_concurrent_versions_of_one_key_newest_wins(catalog: SqliteCatalog) -> None:
    versions = [format_version(n) for n in (5, 1, 9, 3, 7, 2, 8)]
    await asyncio.gather(*(catalog.commit_object(record(v, size=int(v))) for v in versions))
    got = await catalog.get_object("photos", "a/b.jpg")
    assert got == record(format_version(9), size=9)
