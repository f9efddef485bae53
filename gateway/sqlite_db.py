"""The SQLite connection shared by the catalog's tables: WAL mode, one connection on one
dedicated thread, so no statement ever runs on the event loop."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

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


class SqliteDb:
    """Statements queue up while the catalog thread is busy and then run as one transaction,
    each inside its own savepoint: with synchronous=FULL that is one fsync per batch instead of
    one per commit (group commit), and a failing statement fails only its own caller."""

    def __init__(self, path: Path) -> None:
        self._path = path
        # One thread owns the connection: SQLite serialises writers anyway, and this keeps
        # every statement off the event loop without a connection pool.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="catalog")
        self._db: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        self._queue: list[tuple[Callable[[sqlite3.Connection], Any], asyncio.Future[Any]]] = []
        self._draining = False

    async def _run(self, func: Callable[[sqlite3.Connection], T]) -> T:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        with self._lock:
            self._queue.append((func, future))
            start = not self._draining
            self._draining = True
        if start:
            loop.run_in_executor(self._executor, self._drain, loop)
        return await future

    def _drain(self, loop: asyncio.AbstractEventLoop) -> None:
        while True:
            with self._lock:
                batch, self._queue = self._queue, []
                if not batch:
                    self._draining = False
                    return
            for future, ok, value in self._run_batch(batch):
                loop.call_soon_threadsafe(_settle, future, ok, value)

    def _run_batch(
        self, batch: list[tuple[Callable[[sqlite3.Connection], Any], asyncio.Future[Any]]]
    ) -> list[tuple[asyncio.Future[Any], bool, Any]]:
        db = self._db
        if db is None:
            return [(future, False, RuntimeError("catalog is not open")) for _, future in batch]
        outcomes: list[tuple[asyncio.Future[Any], bool, Any]] = []
        try:
            db.execute("BEGIN IMMEDIATE")
            for func, future in batch:
                db.execute("SAVEPOINT statement")
                try:
                    outcomes.append((future, True, func(db)))
                except Exception as exc:  # noqa: BLE001 - handed to the caller that queued it
                    db.execute("ROLLBACK TO statement")
                    outcomes.append((future, False, exc))
                db.execute("RELEASE statement")
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            if db.in_transaction:
                db.execute("ROLLBACK")
            return [(future, False, exc) for _, future in batch]
        return outcomes

    async def open(self) -> None:
        def connect() -> None:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self._path, check_same_thread=False, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA foreign_keys=ON")
            db.executescript(_SCHEMA)
            self._db = db

        await asyncio.get_running_loop().run_in_executor(self._executor, connect)

    async def close(self) -> None:
        await self.ping()  # let queued statements finish first

        def disconnect() -> None:
            if self._db is not None:
                self._db.close()
                self._db = None

        await asyncio.get_running_loop().run_in_executor(self._executor, disconnect)
        self._executor.shutdown(wait=True)

    async def ping(self) -> None:
        await self._run(lambda db: db.execute("SELECT 1").fetchone())


def _settle(future: asyncio.Future[Any], ok: bool, value: Any) -> None:
    if future.cancelled():
        return
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)
