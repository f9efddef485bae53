"""The mirror outbox in SQLite: `mirror_jobs` (the queue) and `mirror_objects` (each key's
mirror state for one version). Jobs are queued by the statements that commit or hide objects,
inside their transaction, so an object change and its job are never separated by a crash."""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Sequence

from gateway.catalog import MirrorStatus, ObjectRecord
from gateway.mirror_outbox import JobEnd, MirrorJob, MirrorOp, MirrorSummary
from gateway.sqlite_db import SqliteDb

MIRROR_SCHEMA = """
CREATE TABLE IF NOT EXISTS mirror_jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    op TEXT NOT NULL,
    bucket TEXT NOT NULL,
    key TEXT NOT NULL,
    version TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at REAL NOT NULL,
    claimed_by TEXT,
    lease_until REAL,
    last_error TEXT,
    created REAL NOT NULL,
    finished REAL
);
CREATE INDEX IF NOT EXISTS mirror_jobs_by_key ON mirror_jobs (bucket, key, state, id);
CREATE INDEX IF NOT EXISTS mirror_jobs_by_state ON mirror_jobs (state, id);
CREATE TABLE IF NOT EXISTS mirror_objects (
    bucket TEXT NOT NULL,
    key TEXT NOT NULL,
    version TEXT NOT NULL,
    state TEXT NOT NULL,
    url TEXT,
    etag TEXT,
    synced REAL,
    error TEXT,
    PRIMARY KEY (bucket, key)
);
"""

_JOB_COLUMNS = "id, op, bucket, key, version, attempts, created, last_error"
# The head of each key's queue, unless another job of that key holds a live lease (a parked job
# sent back by `mirror retry` may be older than one in flight: it waits for it).
_CLAIMABLE = f"""
SELECT {_JOB_COLUMNS} FROM mirror_jobs AS j
WHERE j.state = 'queued' AND j.next_at <= :now AND (j.lease_until IS NULL OR j.lease_until < :now)
AND NOT EXISTS (
    SELECT 1 FROM mirror_jobs AS o
    WHERE o.bucket = j.bucket AND o.key = j.key AND o.state = 'queued' AND o.id != j.id
    AND (o.id < j.id OR o.lease_until >= :now)
)
ORDER BY j.next_at, j.id LIMIT 1
"""  # noqa: S608 - the column list is a constant


def queue_mirror_job(
    db: sqlite3.Connection, op: MirrorOp, bucket: str, key: str, version: str, now: float
) -> None:
    """Inside the caller's transaction: queue a job if the bucket mirrors, and set the key's
    mirror state (pending for a put; none for a delete: the object is gone)."""
    queued = db.execute(
        "INSERT INTO mirror_jobs (op, bucket, key, version, state, next_at, created) "
        "SELECT ?, ?, ?, ?, 'queued', ?, ? FROM buckets "
        "WHERE name = ? AND json_extract(policy, '$.mirror')",
        (op, bucket, key, version, now, now, bucket),
    ).rowcount
    if not queued:
        return
    if op == "delete":
        db.execute("DELETE FROM mirror_objects WHERE bucket = ? AND key = ?", (bucket, key))
        return
    db.execute(
        "INSERT OR REPLACE INTO mirror_objects (bucket, key, version, state) "
        "VALUES (?, ?, ?, 'pending')",
        (bucket, key, version),
    )


def with_mirror_state(
    db: sqlite3.Connection, records: Sequence[ObjectRecord]
) -> list[ObjectRecord]:
    """The records with their mirror state (one query for the lot; "off" where none is kept)."""
    if not records:
        return []
    bucket = records[0].bucket
    keys = [record.key for record in records]
    placeholders = ",".join("?" * len(keys))
    rows = db.execute(
        "SELECT key, version, state, url, error FROM mirror_objects "  # noqa: S608
        f"WHERE bucket = ? AND key IN ({placeholders})",
        (bucket, *keys),
    )
    found = {
        key: (version, MirrorStatus(state, url, error)) for key, version, state, url, error in rows
    }
    out = []
    for record in records:
        kept = found.get(record.key)
        if kept is not None and kept[0] == record.version and record.bucket == bucket:
            record = dataclasses.replace(record, mirror=kept[1])
        out.append(record)
    return out


class SqliteMirror(SqliteDb):
    async def open(self) -> None:
        await super().open()
        statements = [sql for sql in MIRROR_SCHEMA.split(";") if sql.strip()]

        def create(db: sqlite3.Connection) -> None:
            # Not executescript: it would commit the batch transaction this runs inside.
            for sql in statements:
                db.execute(sql)

        await self._run(create)

    async def claim_mirror_job(self, worker: str, now: float, lease: float) -> MirrorJob | None:
        def claim(db: sqlite3.Connection) -> MirrorJob | None:
            row = db.execute(_CLAIMABLE, {"now": now}).fetchone()
            if row is None:
                return None
            db.execute(
                "UPDATE mirror_jobs SET claimed_by = ?, lease_until = ?, attempts = attempts + 1 "
                "WHERE id = ?",
                (worker, now + lease, row[0]),
            )
            job = _job(row)
            return dataclasses.replace(job, attempts=job.attempts + 1)

        return await self._run(claim)

    async def renew_mirror_lease(self, job_id: int, worker: str, until: float) -> bool:
        def renew(db: sqlite3.Connection) -> bool:
            return (
                db.execute(
                    "UPDATE mirror_jobs SET lease_until = ? "
                    "WHERE id = ? AND claimed_by = ? AND state = 'queued'",
                    (until, job_id, worker),
                ).rowcount
                > 0
            )

        return await self._run(renew)

    async def end_mirror_job(
        self,
        job: MirrorJob,
        worker: str,
        end: JobEnd,
        now: float,
        *,
        url: str | None = None,
        etag: str | None = None,
        error: str | None = None,
    ) -> bool:
        def finish(db: sqlite3.Connection) -> bool:
            held = db.execute(
                "UPDATE mirror_jobs SET state = ?, finished = ?, lease_until = NULL, "
                "last_error = coalesce(?, last_error) "
                "WHERE id = ? AND claimed_by = ? AND state = 'queued'",
                (end, now, error, job.id, worker),
            ).rowcount
            if held and job.op == "put" and end != "superseded":
                db.execute(
                    "UPDATE mirror_objects SET state = ?, url = ?, etag = ?, synced = ?, error = ? "
                    "WHERE bucket = ? AND key = ? AND version = ?",
                    (
                        "synced" if end == "done" else "failed",
                        url,
                        etag,
                        now if end == "done" else None,
                        error,
                        job.bucket,
                        job.key,
                        job.version,
                    ),
                )
            return held > 0

        return await self._run(finish)

    async def retry_mirror_job(self, job: MirrorJob, worker: str, at: float, error: str) -> bool:
        def later(db: sqlite3.Connection) -> bool:
            held = db.execute(
                "UPDATE mirror_jobs SET next_at = ?, lease_until = NULL, claimed_by = NULL, "
                "last_error = ? WHERE id = ? AND claimed_by = ? AND state = 'queued'",
                (at, error, job.id, worker),
            ).rowcount
            db.execute(
                "UPDATE mirror_objects SET error = ? WHERE bucket = ? AND key = ? AND version = ?",
                (error, job.bucket, job.key, job.version),
            )
            return held > 0

        return await self._run(later)

    async def mirror_summary(self, now: float, recent: int) -> MirrorSummary:
        def summarise(db: sqlite3.Connection) -> MirrorSummary:
            queued, oldest = db.execute(
                "SELECT count(*), min(created) FROM mirror_jobs WHERE state = 'queued'"
            ).fetchone()
            (failed,) = db.execute(
                "SELECT count(*) FROM mirror_jobs WHERE state = 'failed'"
            ).fetchone()
            rows = db.execute(
                f"SELECT {_JOB_COLUMNS} FROM mirror_jobs WHERE state = 'failed' "  # noqa: S608
                "ORDER BY finished DESC LIMIT ?",
                (recent,),
            )
            return MirrorSummary(queued, failed, oldest, tuple(_job(row) for row in rows))

        return await self._run(summarise)

    async def requeue_mirror_jobs(self, job_id: int | None, now: float) -> int:
        def requeue(db: sqlite3.Connection) -> int:
            where = "state = 'failed'" + ("" if job_id is None else " AND id = :id")
            jobs = db.execute(
                f"SELECT bucket, key, version FROM mirror_jobs WHERE {where} AND op = 'put'",  # noqa: S608
                {"id": job_id},
            ).fetchall()
            db.executemany(
                "UPDATE mirror_objects SET state = 'pending' "
                "WHERE bucket = ? AND key = ? AND version = ?",
                jobs,
            )
            return db.execute(
                "UPDATE mirror_jobs SET state = 'queued', attempts = 0, next_at = :now, "  # noqa: S608
                f"claimed_by = NULL, lease_until = NULL, finished = NULL WHERE {where}",
                {"id": job_id, "now": now},
            ).rowcount

        return await self._run(requeue)

    async def prune_mirror_jobs(self, before: float) -> int:
        def prune(db: sqlite3.Connection) -> int:
            return db.execute(
                "DELETE FROM mirror_jobs WHERE state IN ('done', 'superseded') AND finished < ?",
                (before,),
            ).rowcount

        return await self._run(prune)


def _job(row: tuple[int, MirrorOp, str, str, str, int, float, str | None]) -> MirrorJob:
    return MirrorJob(*row)
