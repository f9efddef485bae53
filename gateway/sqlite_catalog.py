"""The SQLite catalog (the default): buckets, objects, API keys and repairs, on SqliteDb's single
connection thread; multipart and presigned-upload tables come from SqliteUploads."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import astuple

from gateway.catalog import ApiKeyRecord, BucketDeletion, BucketRecord, ObjectRecord, Repair
from gateway.sqlite_mirror import SqliteMirror, queue_mirror_job, with_mirror_state
from gateway.sqlite_rows import (
    OBJECT_COLUMNS,
    api_key_from_row,
    bucket_from_row,
    object_from_row,
    upsert_object,
)
from gateway.sqlite_sweep import SqliteSweep
from gateway.sqlite_uploads import SqliteUploads

_KEY_COLUMNS = "id, name, sha256, rights, buckets, created, revoked"
_PENDING_COLUMNS = "upload_id, bucket, key, node_id, created, expires, committed_version"


class SqliteCatalog(SqliteUploads, SqliteSweep, SqliteMirror):
    async def put_bucket(self, bucket: BucketRecord) -> BucketRecord:
        policy = bucket.to_json()
        del policy["name"], policy["created"]

        def upsert(db: sqlite3.Connection) -> BucketRecord:
            db.execute(
                "INSERT INTO buckets (name, created, policy) VALUES (?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET policy = excluded.policy",
                (bucket.name, bucket.created, json.dumps(policy)),
            )
            row = db.execute(
                "SELECT name, created, policy FROM buckets WHERE name = ?", (bucket.name,)
            )
            return bucket_from_row(row.fetchone())

        return await self._run(upsert)

    async def get_bucket(self, name: str) -> BucketRecord | None:
        def select(db: sqlite3.Connection) -> BucketRecord | None:
            row = db.execute(
                "SELECT name, created, policy FROM buckets WHERE name = ?", (name,)
            ).fetchone()
            return bucket_from_row(row) if row else None

        return await self._run(select)

    async def list_buckets(self) -> list[BucketRecord]:
        def select(db: sqlite3.Connection) -> list[BucketRecord]:
            rows = db.execute("SELECT name, created, policy FROM buckets ORDER BY name")
            return [bucket_from_row(row) for row in rows]

        return await self._run(select)

    async def delete_bucket(self, name: str) -> BucketDeletion:
        def delete(db: sqlite3.Connection) -> BucketDeletion:
            if db.execute("SELECT 1 FROM buckets WHERE name = ?", (name,)).fetchone() is None:
                return "missing"
            live = "SELECT 1 FROM objects WHERE bucket = ? AND deleted = 0 LIMIT 1"
            uploading = "SELECT 1 FROM uploads WHERE bucket = ? AND state = 'open' LIMIT 1"
            if db.execute(live, (name,)).fetchone() or db.execute(uploading, (name,)).fetchone():
                return "not_empty"
            db.execute("DELETE FROM objects WHERE bucket = ?", (name,))
            db.execute("DELETE FROM buckets WHERE name = ?", (name,))
            return "deleted"

        return await self._run(delete)

    async def commit_object(
        self,
        record: ObjectRecord,
        repairs: Sequence[Repair] = (),
        *,
        create_only: bool = False,
        settles: str | None = None,
    ) -> bool:
        def commit(db: sqlite3.Connection) -> bool:
            changed = upsert_object(db, record, create_only=create_only)
            if settles is not None:
                db.execute(
                    "UPDATE pending_uploads SET committed_version = ? WHERE upload_id = ?",
                    (record.version, settles),
                )
            _add_repairs(db, repairs)
            if changed:
                queue_mirror_job(db, "put", record.bucket, record.key, record.version, time.time())
            return changed

        return await self._run(commit)

    async def get_object(self, bucket: str, key: str) -> ObjectRecord | None:
        def select(db: sqlite3.Connection) -> ObjectRecord | None:
            query = f"SELECT {OBJECT_COLUMNS} FROM objects WHERE bucket = ? AND key = ?"  # noqa: S608
            row = db.execute(query + " AND deleted = 0", (bucket, key)).fetchone()
            return with_mirror_state(db, [object_from_row(row)])[0] if row else None

        return await self._run(select)

    async def list_objects(
        self, bucket: str, *, prefix: str, after: str, limit: int
    ) -> list[ObjectRecord]:
        # Keyset paging on the primary key: each page is one index range scan, and keys written
        # between pages land in later pages or not at all, never twice.
        query = (
            f"SELECT {OBJECT_COLUMNS} FROM objects "  # noqa: S608
            "WHERE bucket = ? AND key > ? AND key >= ? AND substr(key, 1, ?) = ? AND deleted = 0 "
            "ORDER BY key LIMIT ?"
        )

        def select(db: sqlite3.Connection) -> list[ObjectRecord]:
            rows = db.execute(query, (bucket, after, prefix, len(prefix), prefix, limit))
            return with_mirror_state(db, [object_from_row(row) for row in rows])

        return await self._run(select)

    async def add_api_key(self, record: ApiKeyRecord) -> None:
        values = (
            record.id,
            record.name,
            record.sha256,
            json.dumps(list(record.rights)),
            None if record.buckets is None else json.dumps(list(record.buckets)),
            record.created,
            record.revoked,
        )
        await self._run(
            lambda db: db.execute(
                f"INSERT INTO api_keys ({_KEY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",  # noqa: S608
                values,
            )
        )

    async def find_api_key(self, sha256: str) -> ApiKeyRecord | None:
        def select(db: sqlite3.Connection) -> ApiKeyRecord | None:
            row = db.execute(
                f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE sha256 = ?",  # noqa: S608
                (sha256,),
            ).fetchone()
            return api_key_from_row(row) if row else None

        return await self._run(select)

    async def list_api_keys(self) -> list[ApiKeyRecord]:
        def select(db: sqlite3.Connection) -> list[ApiKeyRecord]:
            rows = db.execute(f"SELECT {_KEY_COLUMNS} FROM api_keys ORDER BY created")  # noqa: S608
            return [api_key_from_row(row) for row in rows]

        return await self._run(select)

    async def revoke_api_key(self, key_id: str, when: float) -> bool:
        def revoke(db: sqlite3.Connection) -> bool:
            cursor = db.execute(
                "UPDATE api_keys SET revoked = ? WHERE id = ? AND revoked IS NULL", (when, key_id)
            )
            return cursor.rowcount > 0

        return await self._run(revoke)

    async def remove_object(
        self, bucket: str, key: str, version: str, repairs: Sequence[Repair] = ()
    ) -> bool:
        def remove(db: sqlite3.Connection) -> bool:
            gone = db.execute(
                "UPDATE objects SET deleted = 1, version = ? "
                "WHERE bucket = ? AND key = ? AND version < ? AND deleted = 0",
                (version, bucket, key, version),
            ).rowcount
            _add_repairs(db, repairs)
            if gone:
                queue_mirror_job(db, "delete", bucket, key, version, time.time())
            return gone > 0

        return await self._run(remove)

    async def pending_repairs(self, limit: int) -> list[Repair]:
        def select(db: sqlite3.Connection) -> list[Repair]:
            rows = db.execute(
                "SELECT bucket, key, version, node_id, reason FROM repairs ORDER BY id LIMIT ?",
                (limit,),
            )
            return [Repair(*row) for row in rows]

        return await self._run(select)

    async def add_repairs(self, repairs: Sequence[Repair]) -> None:
        await self._run(lambda db: _add_repairs(db, repairs))

    async def resolve_repairs(self, repairs: Sequence[Repair]) -> None:
        rows = [(r.bucket, r.key, r.node_id, r.version) for r in repairs]
        await self._run(
            lambda db: db.executemany(
                "DELETE FROM repairs WHERE bucket = ? AND key = ? AND node_id = ? AND version <= ?",
                rows,
            )
        )

    async def count_repairs(self) -> int:
        def count(db: sqlite3.Connection) -> int:
            return int(db.execute("SELECT COUNT(*) FROM repairs").fetchone()[0])

        return await self._run(count)


def _add_repairs(db: sqlite3.Connection, repairs: Sequence[Repair]) -> None:
    now = time.time()
    db.executemany(
        "INSERT INTO repairs (bucket, key, version, node_id, reason, created) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        [(*astuple(repair), now) for repair in repairs],
    )
