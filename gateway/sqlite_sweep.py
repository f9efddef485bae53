"""What the sweeper may reclaim, as the SQLite catalog sees it: which replicas nodes hold that no
object, upload in progress or completed upload's manifest still wants."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence

from gateway.sqlite_db import SqliteDb
from shardgate.internal_api import PARTS_BUCKET


def _object_wanted(db: sqlite3.Connection, bucket: str, key: str) -> bool:
    """A plain replica is wanted while its object is live and not a manifest; which version a
    replica should hold is the replicator's business, not the sweeper's."""
    row = db.execute(
        "SELECT manifest FROM objects WHERE bucket = ? AND key = ? AND deleted = 0",
        (bucket, key),
    ).fetchone()
    return row is not None and row[0] is None


def _part_wanted(db: sqlite3.Connection, part: str, version: str) -> bool:
    upload_id, _, number = part.rpartition("/")
    upload = db.execute(
        "SELECT bucket, key, state FROM uploads WHERE upload_id = ?", (upload_id,)
    ).fetchone()
    if upload is None:
        return False
    bucket, key, state = upload
    if state in ("open", "staging"):
        return True  # its parts may still arrive, be sent again or be listed in a complete
    row = db.execute(
        "SELECT manifest FROM objects WHERE bucket = ? AND key = ? AND deleted = 0",
        (bucket, key),
    ).fetchone()
    if row is None or row[0] is None:
        return False
    return any(
        (entry[0], str(entry[1]), entry[2]) == (upload_id, number, version)
        for entry in json.loads(row[0])
    )


class SqliteSweep(SqliteDb):
    async def unwanted_replicas(self, replicas: Sequence[tuple[str, str, str]]) -> list[int]:
        def check(db: sqlite3.Connection) -> list[int]:
            return [
                index
                for index, (bucket, key, version) in enumerate(replicas)
                if not (
                    _part_wanted(db, key, version)
                    if bucket == PARTS_BUCKET
                    else _object_wanted(db, bucket, key)
                )
            ]

        return await self._run(check)

    async def purge_ended(self, before: float) -> int:
        """Forget aborted and expired uploads and presigned uploads whose windows closed before
        `before`; their leftovers on nodes are then simply unwanted. The rows dropped."""

        def purge(db: sqlite3.Connection) -> int:
            uploads = db.execute(
                "DELETE FROM uploads WHERE state IN ('aborted', 'expired') AND expires < ?",
                (before,),
            ).rowcount
            pending = db.execute(
                "DELETE FROM pending_uploads WHERE expires < ?", (before,)
            ).rowcount
            return int(uploads + pending)

        return await self._run(purge)
