"""The SQLite catalog: WAL mode, one connection on one dedicated thread, never on the event loop."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import astuple
from pathlib import Path
from typing import Any, TypeVar

from gateway.catalog import (
    ApiKeyRecord,
    BucketDeletion,
    BucketRecord,
    ObjectRecord,
    PartRecord,
    PendingRecord,
    Repair,
    UploadRecord,
)

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS buckets (
    name TEXT PRIMARY KEY,
    created REAL NOT NULL,
    policy TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS objects (
    bucket TEXT NOT NULL REFERENCES buckets(name),
    key TEXT NOT NULL,
    version TEXT NOT NULL,
    size INTEGER NOT NULL,
    etag TEXT NOT NULL,
    content_type TEXT NOT NULL,
    replicas TEXT NOT NULL,
    user_meta TEXT NOT NULL,
    sha256 TEXT,
    manifest TEXT,
    deleted INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (bucket, key)
);
CREATE TABLE IF NOT EXISTS uploads (
    upload_id TEXT PRIMARY KEY,
    bucket TEXT NOT NULL,
    key TEXT NOT NULL,
    content_type TEXT NOT NULL,
    user_meta TEXT NOT NULL,
    created REAL NOT NULL,
    expires REAL NOT NULL,
    state TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS uploads_by_expiry ON uploads (state, expires);
CREATE TABLE IF NOT EXISTS parts (
    upload_id TEXT NOT NULL,
    part_number INTEGER NOT NULL,
    version TEXT NOT NULL,
    size INTEGER NOT NULL,
    etag TEXT NOT NULL,
    replicas TEXT NOT NULL,
    PRIMARY KEY (upload_id, part_number)
);
CREATE TABLE IF NOT EXISTS pending_uploads (
    upload_id TEXT PRIMARY KEY,
    bucket TEXT NOT NULL,
    key TEXT NOT NULL,
    node_id TEXT NOT NULL,
    created REAL NOT NULL,
    expires REAL NOT NULL,
    committed_version TEXT
);
CREATE INDEX IF NOT EXISTS pending_by_key ON pending_uploads (bucket, key, created);
CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    sha256 TEXT NOT NULL UNIQUE,
    rights TEXT NOT NULL,
    buckets TEXT,
    created REAL NOT NULL,
    revoked REAL
);
CREATE TABLE IF NOT EXISTS repairs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    bucket TEXT NOT NULL,
    key TEXT NOT NULL,
    version TEXT NOT NULL,
    node_id TEXT NOT NULL,
    reason TEXT NOT NULL,
    created REAL NOT NULL
);
"""

_UPSERT = """
INSERT INTO objects
    (bucket, key, version, size, etag, content_type, replicas, user_meta, sha256, manifest)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (bucket, key) DO UPDATE SET
    version = excluded.version, size = excluded.size, etag = excluded.etag,
    content_type = excluded.content_type, replicas = excluded.replicas,
    user_meta = excluded.user_meta, sha256 = excluded.sha256, manifest = excluded.manifest,
    deleted = 0
WHERE excluded.version > objects.version
"""
# A deleted object keeps its row (deleted = 1, version = the delete's) so that an older write
# finishing late cannot bring it back; create-only writes may replace only such a row.
_CREATE = _UPSERT + " AND objects.deleted = 1"
_OBJECT_COLUMNS = (
    "bucket, key, version, size, etag, content_type, replicas, user_meta, sha256, manifest"
)
_UPLOAD_COLUMNS = "upload_id, bucket, key, content_type, user_meta, created, expires, state"
_PART_COLUMNS = "upload_id, part_number, version, size, etag, replicas"
_KEY_COLUMNS = "id, name, sha256, rights, buckets, created, revoked"
_PENDING_COLUMNS = "upload_id, bucket, key, node_id, created, expires, committed_version"


class SqliteCatalog:
    def __init__(self, path: Path) -> None:
        self._path = path
        # One thread owns the connection: SQLite serialises writers anyway, and this keeps
        # every statement off the event loop without a connection pool.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="catalog")
        self._db: sqlite3.Connection | None = None

    async def _run(self, func: Callable[[sqlite3.Connection], T]) -> T:
        def call() -> T:
            assert self._db is not None, "catalog is not open"
            with self._db:
                return func(self._db)

        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    async def open(self) -> None:
        def connect() -> None:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self._path, check_same_thread=False, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA foreign_keys=ON")
            db.executescript(_SCHEMA)
            db.isolation_level = "IMMEDIATE"
            self._db = db

        await asyncio.get_running_loop().run_in_executor(self._executor, connect)

    async def close(self) -> None:
        def disconnect() -> None:
            if self._db is not None:
                self._db.close()
                self._db = None

        await asyncio.get_running_loop().run_in_executor(self._executor, disconnect)
        self._executor.shutdown(wait=True)

    async def ping(self) -> None:
        await self._run(lambda db: db.execute("SELECT 1").fetchone())

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
            return _bucket(row.fetchone())

        return await self._run(upsert)

    async def get_bucket(self, name: str) -> BucketRecord | None:
        def select(db: sqlite3.Connection) -> BucketRecord | None:
            row = db.execute(
                "SELECT name, created, policy FROM buckets WHERE name = ?", (name,)
            ).fetchone()
            return _bucket(row) if row else None

        return await self._run(select)

    async def list_buckets(self) -> list[BucketRecord]:
        def select(db: sqlite3.Connection) -> list[BucketRecord]:
            rows = db.execute("SELECT name, created, policy FROM buckets ORDER BY name")
            return [_bucket(row) for row in rows]

        return await self._run(select)

    async def delete_bucket(self, name: str) -> BucketDeletion:
        def delete(db: sqlite3.Connection) -> BucketDeletion:
            if db.execute("SELECT 1 FROM buckets WHERE name = ?", (name,)).fetchone() is None:
                return "missing"
            live = "SELECT 1 FROM objects WHERE bucket = ? AND deleted = 0 LIMIT 1"
            if db.execute(live, (name,)).fetchone():
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
            changed = _upsert_object(db, record, create_only=create_only)
            if settles is not None:
                db.execute(
                    "UPDATE pending_uploads SET committed_version = ? WHERE upload_id = ?",
                    (record.version, settles),
                )
            _add_repairs(db, repairs)
            return changed

        return await self._run(commit)

    async def get_object(self, bucket: str, key: str) -> ObjectRecord | None:
        def select(db: sqlite3.Connection) -> ObjectRecord | None:
            query = f"SELECT {_OBJECT_COLUMNS} FROM objects WHERE bucket = ? AND key = ?"  # noqa: S608
            row = db.execute(query + " AND deleted = 0", (bucket, key)).fetchone()
            return _object(row) if row else None

        return await self._run(select)

    async def list_objects(
        self, bucket: str, *, prefix: str, after: str, limit: int
    ) -> list[ObjectRecord]:
        # Keyset paging on the primary key: each page is one index range scan, and keys written
        # between pages land in later pages or not at all, never twice.
        query = (
            f"SELECT {_OBJECT_COLUMNS} FROM objects "  # noqa: S608
            "WHERE bucket = ? AND key > ? AND key >= ? AND substr(key, 1, ?) = ? AND deleted = 0 "
            "ORDER BY key LIMIT ?"
        )

        def select(db: sqlite3.Connection) -> list[ObjectRecord]:
            rows = db.execute(query, (bucket, after, prefix, len(prefix), prefix, limit))
            return [_object(row) for row in rows]

        return await self._run(select)

    async def add_upload(self, record: UploadRecord) -> None:
        values = (
            *astuple(record)[:4],
            json.dumps(dict(record.user_meta)),
            record.created,
            record.expires,
            record.state,
        )
        await self._run(
            lambda db: db.execute(
                f"INSERT INTO uploads ({_UPLOAD_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",  # noqa: S608
                values,
            )
        )

    async def get_upload(self, upload_id: str) -> UploadRecord | None:
        query = f"SELECT {_UPLOAD_COLUMNS} FROM uploads WHERE upload_id = ?"  # noqa: S608
        row = await self._run(lambda db: db.execute(query, (upload_id,)).fetchone())
        return _upload(row) if row else None

    async def list_uploads(self, bucket: str) -> list[UploadRecord]:
        query = (
            f"SELECT {_UPLOAD_COLUMNS} FROM uploads "  # noqa: S608
            "WHERE bucket = ? AND state = 'open' ORDER BY created"
        )
        return await self._run(lambda db: [_upload(row) for row in db.execute(query, (bucket,))])

    async def expired_uploads(self, now: float) -> list[UploadRecord]:
        query = f"SELECT {_UPLOAD_COLUMNS} FROM uploads WHERE state = 'open' AND expires < ?"  # noqa: S608
        return await self._run(lambda db: [_upload(row) for row in db.execute(query, (now,))])

    async def put_part(self, part: PartRecord) -> PartRecord | None:
        def put(db: sqlite3.Connection) -> PartRecord | None:
            query = f"SELECT {_PART_COLUMNS} FROM parts WHERE upload_id = ? AND part_number = ?"  # noqa: S608
            row = db.execute(query, (part.upload_id, part.part_number)).fetchone()
            previous = _part(row) if row else None
            if previous is not None and previous.version >= part.version:
                return part  # this write lost to a newer one: it is the one to reclaim
            db.execute(
                f"INSERT OR REPLACE INTO parts ({_PART_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",  # noqa: S608
                _part_values(part),
            )
            return previous

        return await self._run(put)

    async def list_parts(self, upload_id: str) -> list[PartRecord]:
        query = f"SELECT {_PART_COLUMNS} FROM parts WHERE upload_id = ? ORDER BY part_number"  # noqa: S608
        return await self._run(lambda db: [_part(row) for row in db.execute(query, (upload_id,))])

    async def end_upload(
        self, upload_id: str, state: str, completed: ObjectRecord | None = None
    ) -> bool:
        def end(db: sqlite3.Connection) -> bool:
            closed = db.execute(
                "UPDATE uploads SET state = ? WHERE upload_id = ? AND state = 'open'",
                (state, upload_id),
            ).rowcount
            if not closed:
                return False
            db.execute("DELETE FROM parts WHERE upload_id = ?", (upload_id,))
            return True

        closed = await self._run(end)
        if closed and completed is not None:
            await self.commit_object(completed)
        return closed

    async def add_pending(self, record: PendingRecord) -> None:
        await self._run(
            lambda db: db.execute(
                f"INSERT INTO pending_uploads ({_PENDING_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",  # noqa: S608
                astuple(record),
            )
        )

    async def get_pending(self, upload_id: str) -> PendingRecord | None:
        query = f"SELECT {_PENDING_COLUMNS} FROM pending_uploads WHERE upload_id = ?"  # noqa: S608
        row = await self._run(lambda db: db.execute(query, (upload_id,)).fetchone())
        return PendingRecord(*row) if row else None

    async def latest_pending(self, bucket: str, key: str) -> PendingRecord | None:
        query = (
            f"SELECT {_PENDING_COLUMNS} FROM pending_uploads "  # noqa: S608
            "WHERE bucket = ? AND key = ? ORDER BY created DESC LIMIT 1"
        )
        row = await self._run(lambda db: db.execute(query, (bucket, key)).fetchone())
        return PendingRecord(*row) if row else None

    async def unsettled_pending(self, bucket: str, key_prefix: str) -> list[PendingRecord]:
        query = (
            f"SELECT {_PENDING_COLUMNS} FROM pending_uploads "  # noqa: S608
            "WHERE bucket = ? AND substr(key, 1, ?) = ? AND committed_version IS NULL "
            "ORDER BY created"
        )
        args = (bucket, len(key_prefix), key_prefix)
        return await self._run(lambda db: [PendingRecord(*row) for row in db.execute(query, args)])

    async def settle_pending(self, upload_id: str, version: str) -> None:
        await self._run(
            lambda db: db.execute(
                "UPDATE pending_uploads SET committed_version = ? WHERE upload_id = ?",
                (version, upload_id),
            )
        )

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
            return _api_key(row) if row else None

        return await self._run(select)

    async def list_api_keys(self) -> list[ApiKeyRecord]:
        def select(db: sqlite3.Connection) -> list[ApiKeyRecord]:
            rows = db.execute(f"SELECT {_KEY_COLUMNS} FROM api_keys ORDER BY created")  # noqa: S608
            return [_api_key(row) for row in rows]

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


def _add_repairs(db: sqlite3.Connection, repairs: Sequence[Repair]) -> None:
    now = time.time()
    db.executemany(
        "INSERT INTO repairs (bucket, key, version, node_id, reason, created) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        [(*astuple(repair), now) for repair in repairs],
    )


def _bucket(row: tuple[str, float, str]) -> BucketRecord:
    name, created, policy_json = row
    policy = json.loads(policy_json)
    return BucketRecord(
        name=name,
        created=created,
        max_object_size=policy.get("max_object_size"),
        allowed_types=tuple(policy.get("allowed_types", ())),
        public_read=bool(policy.get("public_read", False)),
        cors_origins=tuple(policy.get("cors_origins", ())),
        mirror=bool(policy.get("mirror", False)),
    )


def _api_key(row: tuple[str, str, str, str, str | None, float, float | None]) -> ApiKeyRecord:
    key_id, name, sha256, rights, buckets, created, revoked = row
    return ApiKeyRecord(
        id=key_id,
        name=name,
        sha256=sha256,
        rights=tuple(json.loads(rights)),
        buckets=None if buckets is None else tuple(json.loads(buckets)),
        created=created,
        revoked=revoked,
    )


def _upsert_object(db: sqlite3.Connection, record: ObjectRecord, *, create_only: bool) -> bool:
    manifest = [_part_values(part) for part in record.manifest]
    values = (
        record.bucket,
        record.key,
        record.version,
        record.size,
        record.etag,
        record.content_type,
        json.dumps(list(record.replicas)),
        json.dumps(dict(record.user_meta)),
        record.sha256,
        json.dumps(manifest) if manifest else None,
    )
    return db.execute(_CREATE if create_only else _UPSERT, values).rowcount > 0


def _part_values(part: PartRecord) -> tuple[str, int, str, int, str, str]:
    return (
        part.upload_id,
        part.part_number,
        part.version,
        part.size,
        part.etag,
        json.dumps(part.replicas),
    )


def _part(row: Sequence[Any]) -> PartRecord:
    upload_id, number, version, size, etag, replicas = row
    return PartRecord(upload_id, number, version, size, etag, tuple(json.loads(replicas)))


def _upload(row: Sequence[Any]) -> UploadRecord:
    upload_id, bucket, key, content_type, user_meta, created, expires, state = row
    return UploadRecord(
        upload_id, bucket, key, content_type, json.loads(user_meta), created, expires, state
    )


def _object(
    row: tuple[str, str, str, int, str, str, str, str, str | None, str | None],
) -> ObjectRecord:
    bucket, key, version, size, etag, content_type, replicas, user_meta, sha256, manifest = row
    return ObjectRecord(
        bucket=bucket,
        key=key,
        version=version,
        size=size,
        etag=etag,
        content_type=content_type,
        replicas=tuple(json.loads(replicas)),
        user_meta=json.loads(user_meta),
        sha256=sha256,
        manifest=tuple(_part(values) for values in json.loads(manifest)) if manifest else (),
    )
