"""The disk store: one directory tree per node, written atomically and read with sendfile.

Layout under the data directory:
    objects/<partition>/<hash>/<version>.data   the bytes of a committed version
    objects/<partition>/<hash>/<version>.meta   its metadata; its rename is the commit point
    objects/<partition>/<hash>/<version>.ts     a tombstone
    tmp/<uuid>.tmp                              writes in progress (the sweeper's pattern)
Object paths come from the hash of bucket/key, never from the key itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import uuid
import weakref
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from storage_node.disk_io import fsync_dir, storage_errors
from storage_node.disk_writer import DiskWriter
from storage_node.errors import Superseded
from storage_node.pending_store import DiskPendingUploads
from storage_node.records import ObjectMeta, Vouched
from storage_node.store import Usage

TMP_SUFFIX = ".tmp"
READ_CHUNK = 256 * 1024


class DiskStore:
    """A Store on one local filesystem; implements Store and LocalFiles."""

    def __init__(self, root: Path, *, fsync: bool = True, io_threads: int = 32) -> None:
        self.root = root
        self.fsync = fsync
        # fsyncs of different files proceed in parallel on the device, so many threads serve
        # concurrent uploads far better than the loop's default handful.
        self.pool = ThreadPoolExecutor(io_threads, thread_name_prefix="disk")
        self.objects = root / "objects"
        self.tmp = root / "tmp"
        for directory in (self.objects, self.tmp):
            directory.mkdir(parents=True, exist_ok=True)
        self.active_tmp: set[Path] = set()
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        self.uploads = DiskPendingUploads(self)

    def lock(self, obj_hash: str) -> asyncio.Lock:
        """Serialises commits of one object within this process (one process owns a data dir)."""
        lock = self._locks.get(obj_hash)
        if lock is None:
            lock = asyncio.Lock()
            self._locks[obj_hash] = lock
        return lock

    def object_dir(self, partition: int, obj_hash: str) -> Path:
        return self.objects / str(partition) / obj_hash

    def data_path(self, partition: int, obj_hash: str, version: str) -> Path:
        return self.object_dir(partition, obj_hash) / f"{version}.data"

    def tmp_path(self) -> Path:
        path = self.tmp / f"{uuid.uuid4().hex}{TMP_SUFFIX}"
        self.active_tmp.add(path)
        return path

    def release_tmp(self, path: Path) -> None:
        self.active_tmp.discard(path)

    def write_durably(self, path: Path, payload: bytes) -> None:
        with path.open("wb") as fh:
            fh.write(payload)
            fh.flush()
            if self.fsync:
                os.fsync(fh.fileno())

    def install(self, target: Path, meta: ObjectMeta, data: Path | None = None) -> None:
        """Put a version in place: its data file (already durable) first, then its metadata,
        whose rename is the commit point (a .ts for a tombstone); then drop what it replaces."""
        meta_tmp = self.tmp_path()
        try:
            self.write_durably(meta_tmp, meta.to_json())
            self.make_dirs(target)
            # A crash between the two renames leaves an orphan .data readers never consider.
            if data is not None:
                os.rename(data, target / f"{meta.version}.data")
            os.rename(meta_tmp, target / f"{meta.version}.{'ts' if meta.tombstone else 'meta'}")
            if self.fsync:
                fsync_dir(target)
        finally:
            meta_tmp.unlink(missing_ok=True)
            self.release_tmp(meta_tmp)
        self.drop_older(target, meta.version)

    def make_dirs(self, target: Path) -> None:
        """Create the object's directory, fsyncing each new one's parent so it survives a crash."""
        missing: list[Path] = []
        walk = target
        while not walk.exists():
            missing.append(walk)
            walk = walk.parent
        for directory in reversed(missing):
            directory.mkdir(exist_ok=True)
            if self.fsync:
                fsync_dir(directory.parent)

    @staticmethod
    def versions_of(target: Path) -> tuple[set[str], set[str], set[str]]:
        data: set[str] = set()
        metas: set[str] = set()
        tombstones: set[str] = set()
        try:
            names = os.listdir(target)
        except FileNotFoundError:
            return data, metas, tombstones
        for name in names:
            stem, _, suffix = name.partition(".")
            {"data": data, "meta": metas, "ts": tombstones}.get(suffix, set()).add(stem)
        return data, metas, tombstones

    def newest_sync(self, target: Path) -> ObjectMeta | None:
        data, metas, tombstones = self.versions_of(target)
        candidates = (data & metas) | tombstones
        if not candidates:
            return None
        newest = max(candidates)
        suffix = "ts" if newest in tombstones else "meta"
        return ObjectMeta.from_json((target / f"{newest}.{suffix}").read_bytes())

    def drop_older(self, target: Path, keep: str) -> None:
        """Remove every version older than `keep` (and orphans), after `keep` is durable."""
        for name in os.listdir(target):
            if name.partition(".")[0] < keep:
                (target / name).unlink(missing_ok=True)

    async def create_writer(
        self,
        partition: int,
        obj_hash: str,
        *,
        sha256: bool = False,
        md5: bool = True,
        vouched: Vouched | None = None,
    ) -> DiskWriter:
        return DiskWriter(
            self, partition, obj_hash, self.tmp_path(), sha256=sha256, md5=md5, vouched=vouched
        )

    async def newest(self, partition: int, obj_hash: str) -> ObjectMeta | None:
        target = self.object_dir(partition, obj_hash)
        return await asyncio.get_running_loop().run_in_executor(self.pool, self.newest_sync, target)

    async def read(
        self, partition: int, obj_hash: str, meta: ObjectMeta, start: int, end: int
    ) -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        fh = await loop.run_in_executor(
            self.pool, self.data_path(partition, obj_hash, meta.version).open, "rb"
        )
        try:
            await loop.run_in_executor(self.pool, fh.seek, start)
            remaining = end - start
            while remaining > 0:
                chunk = await loop.run_in_executor(self.pool, fh.read, min(READ_CHUNK, remaining))
                if not chunk:
                    break
                remaining -= len(chunk)
                yield chunk
        finally:
            await loop.run_in_executor(self.pool, fh.close)

    async def write_tombstone(self, partition: int, obj_hash: str, meta: ObjectMeta) -> ObjectMeta:
        async with self.lock(obj_hash):
            return await asyncio.get_running_loop().run_in_executor(
                self.pool, self._tombstone_sync, partition, obj_hash, meta
            )

    @storage_errors
    def _tombstone_sync(self, partition: int, obj_hash: str, meta: ObjectMeta) -> ObjectMeta:
        target = self.object_dir(partition, obj_hash)
        current = self.newest_sync(target)
        if current is not None and current.version >= meta.version:
            if current.tombstone and current.version == meta.version:
                return current
            raise Superseded(current.version)
        self.install(target, meta)
        return meta

    async def discard(self, partition: int, obj_hash: str, version: str) -> bool:
        async with self.lock(obj_hash):
            return await asyncio.get_running_loop().run_in_executor(
                self.pool, self._discard_sync, self.object_dir(partition, obj_hash), version
            )

    def _discard_sync(self, target: Path, version: str) -> bool:
        meta_file = target / f"{version}.meta"
        if not meta_file.exists():
            return False
        meta_file.unlink()  # the commit point goes first, so the version vanishes at once
        (target / f"{version}.data").unlink(missing_ok=True)
        if self.fsync:
            fsync_dir(target)
        with contextlib.suppress(OSError):
            target.rmdir()  # only if nothing else is left; commits of this hash hold our lock
        return True

    async def list_partition(self, partition: int) -> list[tuple[str, ObjectMeta]]:
        return await asyncio.get_running_loop().run_in_executor(
            self.pool, self._list_sync, partition
        )

    def _list_sync(self, partition: int) -> list[tuple[str, ObjectMeta]]:
        base = self.objects / str(partition)
        try:
            hashes = sorted(os.listdir(base))
        except FileNotFoundError:
            return []
        entries: list[tuple[str, ObjectMeta]] = []
        for obj_hash in hashes:
            meta = self.newest_sync(base / obj_hash)
            if meta is not None:
                entries.append((obj_hash, meta))
        return entries

    def close(self) -> None:
        self.pool.shutdown(wait=True)

    async def usage(self) -> Usage:
        total, _, free = await asyncio.get_running_loop().run_in_executor(
            None, shutil.disk_usage, self.root
        )
        return Usage(free_bytes=free, total_bytes=total)
