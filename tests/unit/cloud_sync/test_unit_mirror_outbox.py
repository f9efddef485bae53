"""The mirror outbox in the SQLite catalog: jobs queued in the object's own transaction, claimed
under a lease one per key in commit order, retried, parked, requeued and summarised."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.catalog import BucketRecord, ObjectRecord, PartRecord, UploadRecord
from gateway.mirror_outbox import MirrorJob
from gateway.sqlite_catalog import SqliteCatalog
from shardgate.versions import format_version

V1, V2, V3 = (format_version(n) for n in (1_000, 2_000, 3_000))
NOW = 1_800_000_000.0


@pytest.fixture
async def catalog(tmp_path: Path) -> AsyncIterator[SqliteCatalog]:
    cat = SqliteCatalog(tmp_path / "c.sqlite3")
    await cat.open()
    await cat.put_bucket(BucketRecord("mirrored", created=1.0, mirror=True))
    await cat.put_bucket(BucketRecord("plain", created=1.0))
    yield cat
    await cat.close()


def obj(version: str, key: str = "k", bucket: str = "mirrored") -> ObjectRecord:
    return ObjectRecord(bucket, key, version, 3, "a" * 32, "text/plain", ("n1", "n2"))


def jobs(path: Path) -> list[tuple[str, str, str, str]]:
    with sqlite3.connect(path) as db:
        return db.execute("SELECT op, bucket, key, version FROM mirror_jobs ORDER BY id").fetchall()


async def test_commit_and_delete_queue_jobs_only_for_mirrored_buckets(
    catalog: SqliteCatalog, tmp_path: Path
) -> None:
    assert await catalog.commit_object(obj(V1))
    assert await catalog.commit_object(obj(V1, bucket="plain"))
    assert await catalog.remove_object("mirrored", "k", V2)
    assert await catalog.remove_object("plain", "k", V2)
    await catalog.ping()
    assert jobs(tmp_path / "c.sqlite3") == [
        ("put", "mirrored", "k", V1),
        ("delete", "mirrored", "k", V2),
    ]


async def test_a_write_that_loses_to_a_newer_one_queues_nothing(
    catalog: SqliteCatalog, tmp_path: Path
) -> None:
    assert await catalog.commit_object(obj(V2))
    assert not await catalog.commit_object(obj(V1))
    assert not await catalog.remove_object("mirrored", "k", V1)
    await catalog.ping()
    assert jobs(tmp_path / "c.sqlite3") == [("put", "mirrored", "k", V2)]


async def test_a_failed_commit_leaves_neither_object_nor_job(
    catalog: SqliteCatalog, tmp_path: Path
) -> None:
    # No such bucket: the objects row violates its foreign key, and the job goes with it.
    with pytest.raises(sqlite3.IntegrityError):
        await catalog.commit_object(obj(V1, bucket="nope"))
    assert await catalog.get_object("nope", "k") is None
    assert jobs(tmp_path / "c.sqlite3") == []


async def test_completing_a_multipart_upload_queues_its_put(
    catalog: SqliteCatalog, tmp_path: Path
) -> None:
    await catalog.add_upload(UploadRecord("u1", "mirrored", "big", "text/plain", {}, 1.0, 9e9))
    part = PartRecord("u1", 1, V1, 3, "b" * 32, ("n1",))
    assert (await catalog.put_part(part, 2.0))[0]
    completed = ObjectRecord(
        "mirrored", "big", V2, 3, "c" * 32 + "-1", "text/plain", (), {}, None, (part,)
    )
    ending, _ = await catalog.end_upload("u1", "completed", completed)
    assert ending == "ended"
    assert jobs(tmp_path / "c.sqlite3") == [("put", "mirrored", "big", V2)]


async def test_object_shows_its_mirror_state_for_its_own_version(catalog: SqliteCatalog) -> None:
    await catalog.commit_object(obj(V1, bucket="plain"))
    assert (await catalog.get_object("plain", "k")).mirror.state == "off"  # type: ignore[union-attr]
    await catalog.commit_object(obj(V1))
    assert (await catalog.get_object("mirrored", "k")).mirror.state == "pending"  # type: ignore[union-attr]
    job = await catalog.claim_mirror_job("w", NOW, 60)
    assert job is not None
    assert await catalog.end_mirror_job(job, "w", "done", NOW, url="s3://x/k", etag="e")
    listed = await catalog.list_objects("mirrored", prefix="", after="", limit=10)
    assert listed[0].mirror.to_json() == {"state": "synced", "url": "s3://x/k"}
    await catalog.commit_object(obj(V2))
    current = await catalog.get_object("mirrored", "k")
    assert current is not None
    assert current.mirror.to_json() == {"state": "pending", "url": None}


async def test_jobs_of_one_key_are_claimed_one_at_a_time_in_commit_order(
    catalog: SqliteCatalog,
) -> None:
    await catalog.commit_object(obj(V1))
    await catalog.commit_object(obj(V1, key="other"))
    await catalog.remove_object("mirrored", "k", V2)
    first = await catalog.claim_mirror_job("w1", NOW, 60)
    second = await catalog.claim_mirror_job("w2", NOW, 60)
    assert first is not None and second is not None
    assert (first.key, first.op, second.key) == ("k", "put", "other")
    assert await catalog.claim_mirror_job("w3", NOW, 60) is None  # k's delete waits for its put
    assert await catalog.end_mirror_job(first, "w1", "done", NOW)
    third = await catalog.claim_mirror_job("w3", NOW, 60)
    assert third is not None and (third.key, third.op, third.version) == ("k", "delete", V2)


async def test_an_expired_lease_is_claimed_again_and_the_old_holder_cannot_finish(
    catalog: SqliteCatalog,
) -> None:
    await catalog.commit_object(obj(V1))
    job = await catalog.claim_mirror_job("dead", NOW, 60)
    assert job is not None and job.attempts == 1
    assert await catalog.claim_mirror_job("w2", NOW + 59, 60) is None
    again = await catalog.claim_mirror_job("w2", NOW + 61, 60)
    assert again is not None and again.id == job.id and again.attempts == 2
    assert not await catalog.end_mirror_job(job, "dead", "done", NOW + 62)
    assert not await catalog.renew_mirror_lease(job.id, "dead", NOW + 200)
    assert await catalog.renew_mirror_lease(job.id, "w2", NOW + 200)
    assert await catalog.end_mirror_job(again, "w2", "done", NOW + 62)


async def test_retry_waits_for_its_time_then_park_and_requeue(catalog: SqliteCatalog) -> None:
    await catalog.commit_object(obj(V1))
    job = await catalog.claim_mirror_job("w", NOW, 60)
    assert job is not None
    assert await catalog.retry_mirror_job(job, "w", NOW + 10, "SinkError: down")
    assert await catalog.claim_mirror_job("w", NOW + 9, 60) is None
    job = await catalog.claim_mirror_job("w", NOW + 10, 60)
    assert job is not None and job.attempts == 2 and job.last_error == "SinkError: down"
    assert await catalog.end_mirror_job(job, "w", "failed", NOW + 11, error="SinkError: still")
    record = await catalog.get_object("mirrored", "k")
    assert record is not None
    assert record.mirror.to_json() == {"state": "failed", "url": None, "error": "SinkError: still"}
    summary = await catalog.mirror_summary(NOW + 12, recent=5)
    assert (summary.queued, summary.failed, summary.lag(NOW + 12)) == (0, 1, 0.0)
    assert [(j.id, j.last_error) for j in summary.recent_failures] == [(job.id, "SinkError: still")]
    assert await catalog.claim_mirror_job("w", NOW + 99, 60) is None  # parked stays parked
    assert await catalog.requeue_mirror_jobs(None, NOW + 100) == 1
    record = await catalog.get_object("mirrored", "k")
    assert record is not None and record.mirror.state == "pending"
    summary = await catalog.mirror_summary(NOW + 103, recent=5)
    assert (summary.queued, summary.failed) == (1, 0)
    assert summary.oldest_queued is not None  # lag counts from the commit, not the requeue
    assert summary.lag(NOW + 103) == NOW + 103 - summary.oldest_queued
    again = await catalog.claim_mirror_job("w", NOW + 100, 60)
    assert again is not None and again.id == job.id and again.attempts == 1


async def test_a_parked_job_does_not_hold_back_later_jobs_of_its_key(
    catalog: SqliteCatalog,
) -> None:
    await catalog.commit_object(obj(V1))
    job = await catalog.claim_mirror_job("w", NOW, 60)
    assert job is not None
    await catalog.end_mirror_job(job, "w", "failed", NOW, error="x")
    await catalog.commit_object(obj(V2))
    later = await catalog.claim_mirror_job("w", NOW, 60)
    assert later is not None and later.version == V2
    # Sent back while V2's job holds its lease, V1's job waits for it to end.
    assert await catalog.requeue_mirror_jobs(job.id, NOW) == 1
    assert await catalog.claim_mirror_job("w2", NOW, 60) is None
    await catalog.end_mirror_job(later, "w", "done", NOW)
    back = await catalog.claim_mirror_job("w2", NOW, 60)
    assert isinstance(back, MirrorJob) and back.id == job.id


async def test_prune_forgets_finished_jobs_only(catalog: SqliteCatalog, tmp_path: Path) -> None:
    await catalog.commit_object(obj(V1))
    await catalog.commit_object(obj(V1, key="bad"))
    done = await catalog.claim_mirror_job("w", NOW, 60)
    bad = await catalog.claim_mirror_job("w", NOW, 60)
    assert done is not None and bad is not None
    await catalog.end_mirror_job(done, "w", "done", NOW)
    await catalog.end_mirror_job(bad, "w", "failed", NOW, error="x")
    assert await catalog.prune_mirror_jobs(NOW + 1) == 1
    assert [job[2] for job in jobs(tmp_path / "c.sqlite3")] == ["bad"]
