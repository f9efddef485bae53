"""The disk store: one directory tree per node, written atomically and read with sendfile.

Layout under the data directory:
    objects/<partition>/<hash>/<version>.data   a committed version: its bytes, then its
                                                metadata (version_file); its rename commits it
    objects/<partition>/<hash>/<version>.ts     a tombstone
    tmp/<uuid>.tmp                              writes in progress (the sweeper's pattern)
Object paths come from the hash of bucket/key, never from the key itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import uuid
import weakref
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from storage_node.blocks import has_checksums, read_checked
from storage_node.disk_io import (
    errors_reach_every_open_file,
    fsync_dir,
    run_to_end,
    storage_errors,
)
from storage_node.disk_writer import DiskWriter
from storage_node.errors import ReplicaCorrupt, Superseded
from storage_node.layout_upgrade import upgrade_layout
from storage_node.pending_store import DiskPendingUploads
from storage_node.records import ObjectMeta, Vouched
from storage_node.store import Usage
from storage_node.version_file import NoTrailer, read_meta

log = logging.getLogger(__name__)
T = TypeVar("T")

TMP_SUFFIX = ".tmp"
READ_CHUNK = 256 * 1024
FLUSH_THREADS = 4
LIST_ATTEMPTS = 5  # each a commit replacing the newest version between a listing and its read


class DiskStore:
    """A Store on one local filesystem; implements Store and LocalFiles."""

    def __init__(self, root: Path, *, fsync: bool = True, io_threads: int = 32) -> None:
        self.root = root
        self.fsync = fsync
        # fsyncs of different files proceed in parallel on the device, so many threads serve
        # concurrent uploads far better than the loop's default handful.
        self.pool = ThreadPoolExecutor(io_threads, thread_name_prefix="disk")
        # Flush-behind of big uploads: few threads, so a burst of them never starves the reads
        # and commits waiting on the disk pool; a flush that starts late does no harm.
        self.flush_behind = fsync and errors_reach_every_open_file()
        self.flush_pool = ThreadPoolExecutor(FLUSH_THREADS, thread_name_prefix="flush")
        self.objects = root / "objects"
        self.tmp = root / "tmp"
        for directory in (self.objects, self.tmp):
            directory.mkdir(parents=True, exist_ok=True)
        upgrade_layout(self)
        self.active_tmp: set[Path] = set()
        # Called on a disk thread for each damaged version file a lookup sets aside.
        self.on_damaged: Callable[[], object] = lambda: None
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
        """Put a version in place by one rename, the commit point: its file, already durable
        with its trailer, or else a tombstone written here; then drop what it replaces."""
        written = None
        if data is None:
            written = data = self.tmp_path()
            self.write_durably(data, meta.to_json())
        try:
            self.make_dirs(target)
            os.rename(data, target / f"{meta.version}.{'ts' if meta.tombstone else 'data'}")
            if self.fsync:
                fsync_dir(target)
        finally:
            if written is not None:
                written.unlink(missing_ok=True)
                self.release_tmp(written)
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
    def versions_of(target: Path) -> tuple[set[str], set[str]]:
        """The committed versions and tombstones, by name alone."""
        data: set[str] = set()
        tombstones: set[str] = set()
        try:
            names = os.listdir(target)
        except FileNotFoundError:
            return data, tombstones
        for name in names:
            stem, _, suffix = name.partition(".")
            {"data": data, "ts": tombstones}.get(suffix, set()).add(stem)
        return data, tombstones

    def newest_sync(self, target: Path) -> ObjectMeta | None:
        return self._lookup(target, 0)[0]

    def _lookup(self, target: Path, body_limit: int) -> tuple[ObjectMeta | None, list[bytes]]:
        """The newest version or tombstone, and the body of a version of at most `body_limit`
        bytes, read from the file its metadata came from."""
        for _ in range(LIST_ATTEMPTS):
            data, tombstones = self.versions_of(target)
            try:
                return self._newest_of(target, data | tombstones, tombstones, body_limit)
            except FileNotFoundError:
                continue  # replaced since the listing: look again
        raise FileNotFoundError(f"{target} changed under every one of {LIST_ATTEMPTS} reads")

    def _newest_of(
        self, target: Path, versions: set[str], tombstones: set[str], body_limit: int
    ) -> tuple[ObjectMeta | None, list[bytes]]:
        for version in sorted(versions, reverse=True):
            if version in tombstones:
                return ObjectMeta.from_json((target / f"{version}.ts").read_bytes()), []
            fd = os.open(target / f"{version}.data", os.O_RDONLY)
            try:
                meta = read_meta(fd)
                return meta, _checked_body(fd, meta, body_limit)
            except NoTrailer as exc:
                # Its end is damaged: out of the way, so the replicator's digests differ and it
                # pushes a sound copy, and last-writer-wins compares with what is readable.
                log.error("%s/%s.data is unreadable, quarantined: %s", target, version, exc)
                if self.set_aside(target, version, inode=os.fstat(fd).st_ino):
                    self.on_damaged()
            finally:
                os.close(fd)
        return None, []

    def set_aside(
        self, target: Path, version: str, suffixes: tuple[str, ...] = ("data",), inode: int = 0
    ) -> bool:
        """Move a version's files to quarantine/, kept for inspection; False if none is there.
        With `inode`, only if the .data is still that file: a lookup holds no lock, and a repair
        may have put a sound copy in its place. The directory stays: only locked paths rmdir."""
        sources = [target / f"{version}.{suffix}" for suffix in suffixes]
        sources = [source for source in sources if source.exists()]
        if not sources or (inode and (target / f"{version}.data").stat().st_ino != inode):
            return False
        aside = self.root / "quarantine" / target.relative_to(self.objects)
        aside.mkdir(parents=True, exist_ok=True)
        for source in sources:
            os.replace(source, aside / source.name)
        if self.fsync:
            fsync_dir(target)
            fsync_dir(aside)
        return True

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

    async def newest_and_body(
        self, partition: int, obj_hash: str, limit: int
    ) -> tuple[ObjectMeta | None, list[bytes]]:
        """The newest version or tombstone and, for a version of at most `limit` bytes with block
        sums, its bytes, checked: one disk-thread hop where a lookup and a read take two. The
        bytes come in a list the caller empties, so that no frame keeps them alive; the list is
        empty if they fail their check, which the read that follows finds again and handles."""
        target = self.object_dir(partition, obj_hash)
        return await asyncio.get_running_loop().run_in_executor(
            self.pool, self._lookup, target, limit
        )

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
        return await self.locked(obj_hash, self._tombstone_sync, partition, obj_hash, meta)

    async def locked(self, obj_hash: str, func: Callable[..., T], *args: object) -> T:
        """Run `func` on a disk thread under the object's lock, held until the thread is done
        even if the caller is cancelled: no second change of the object may run beside it."""
        async with self.lock(obj_hash):
            return await run_to_end(self.pool.submit(func, *args))

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
        target = self.object_dir(partition, obj_hash)
        return await self.locked(obj_hash, self._discard_sync, target, version)

    def _discard_sync(self, target: Path, version: str) -> bool:
        try:
            (target / f"{version}.data").unlink()
        except FileNotFoundError:
            return False
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
        self.flush_pool.shutdown(wait=True, cancel_futures=True)

    async def usage(self) -> Usage:
        total, _, free = await asyncio.get_running_loop().run_in_executor(
            None, shutil.disk_usage, self.root
        )
        return Usage(free_bytes=free, total_bytes=total)


def _checked_body(fd: int, meta: ObjectMeta, limit: int) -> list[bytes]:
    """The version's bytes, checked, if it has block sums and at most `limit` bytes; none if
    they fail the check, which the read that follows finds again and handles."""
    if meta.size > limit or not has_checksums(meta):
        return []
    try:
        return [read_checked(fd, meta)]
    except ReplicaCorrupt:
        return []
