"""The catalog's multipart tables (uploads, parts) and presigned direct uploads."""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import astuple

from gateway.catalog import ObjectRecord, PartRecord, PendingRecord, UploadEnding, UploadRecord
from gateway.sqlite_db import SqliteDb
from gateway.sqlite_mirror import queue_mirror_job
from gateway.sqlite_rows import part_from_row, part_values, upload_from_row, upsert_object

_UPLOAD_COLUMNS = "upload_id, bucket, key, content_type, user_meta, created, expires, state"
_PART_COLUMNS = "upload_id, part_number, version, size, etag, replicas"
_PENDING_COLUMNS = "upload_id, bucket, key, node_id, created, expires, committed_version"


class SqliteUploads(SqliteDb):
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
        return upload_from_row(row) if row else None

    async def list_uploads(self, bucket: str, now: float) -> list[UploadRecord]:
        query = (
            f"SELECT {_UPLOAD_COLUMNS} FROM uploads "  # noqa: S608
            "WHERE bucket = ? AND state = 'open' AND expires >= ? ORDER BY created"
        )
        return await self._run(
            lambda db: [upload_from_row(row) for row in db.execute(query, (bucket, now))]
        )

    async def expired_uploads(self, now: float) -> list[UploadRecord]:
        query = (
            f"SELECT {_UPLOAD_COLUMNS} FROM uploads "  # noqa: S608
            "WHERE state IN ('open', 'staging') AND expires < ?"
        )
        return await self._run(
            lambda db: [upload_from_row(row) for row in db.execute(query, (now,))]
        )

    async def upload_with_parts(
        self, upload_id: str
    ) -> tuple[UploadRecord | None, list[PartRecord]]:
        def read(db: sqlite3.Connection) -> tuple[UploadRecord | None, list[PartRecord]]:
            row = db.execute(
                f"SELECT {_UPLOAD_COLUMNS} FROM uploads WHERE upload_id = ?",  # noqa: S608
                (upload_id,),
            ).fetchone()
            return (upload_from_row(row) if row else None), _parts_of(db, upload_id)

        return await self._run(read)

    async def put_part(self, part: PartRecord, now: float) -> tuple[bool, PartRecord | None]:
        def put(db: sqlite3.Connection) -> tuple[bool, PartRecord | None]:
            state = db.execute(
                "SELECT 1 FROM uploads WHERE upload_id = ? AND state = 'open' AND expires >= ?",
                (part.upload_id, now),
            ).fetchone()
            if state is None:
                return False, None
            query = f"SELECT {_PART_COLUMNS} FROM parts WHERE upload_id = ? AND part_number = ?"  # noqa: S608
            row = db.execute(query, (part.upload_id, part.part_number)).fetchone()
            previous = part_from_row(row) if row else None
            if previous is not None and previous.version >= part.version:
                return True, part  # this write lost to a newer one: it is the one to reclaim
            db.execute(
                f"INSERT OR REPLACE INTO parts ({_PART_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",  # noqa: S608
                part_values(part),
            )
            return True, previous

        return await self._run(put)

    async def list_parts(self, upload_id: str) -> list[PartRecord]:
        return await self._run(lambda db: _parts_of(db, upload_id))

    async def end_upload(
        self, upload_id: str, state: str, completed: ObjectRecord | None = None
    ) -> tuple[UploadEnding, list[PartRecord]]:
        def end(db: sqlite3.Connection) -> tuple[UploadEnding, list[PartRecord]]:
            parts = _parts_of(db, upload_id)
            if completed is not None:
                current = {p.part_number: p.version for p in parts}
                if any(current.get(p.part_number) != p.version for p in completed.manifest):
                    return "parts_changed", []
            closed = db.execute(
                "UPDATE uploads SET state = ? WHERE upload_id = ? AND state IN ('open', 'staging')",
                (state, upload_id),
            ).rowcount
            if not closed:
                return "not_open", []
            db.execute("DELETE FROM parts WHERE upload_id = ?", (upload_id,))
            if completed is not None and upsert_object(db, completed, create_only=False):
                c = completed
                queue_mirror_job(db, "put", c.bucket, c.key, c.version, time.time())
            return "ended", parts

        return await self._run(end)

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


def _parts_of(db: sqlite3.Connection, upload_id: str) -> list[PartRecord]:
    query = f"SELECT {_PART_COLUMNS} FROM parts WHERE upload_id = ? ORDER BY part_number"  # noqa: S608
    return [part_from_row(row) for row in db.execute(query, (upload_id,))]
