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
import hashlib
import os
import shutil
import uuid
import weakref
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import IO, TypeVar

from storage_node.blocks import CRC32C, BlockSums, blocks_digest
from storage_node.disk_io import fsync_dir, storage_errors
from storage_node.errors import BadDigest, IncompleteBody, PreconditionFailed, Superseded
from storage_node.pending_store import DiskPendingUploads
from storage_node.records import NewVersion, ObjectMeta, PendingUpload, Vouched
from storage_node.store import Usage

T = TypeVar("T")
TMP_SUFFIX = ".tmp"
READ_CHUNK = 256 * 1024
HEAD_BYTES = 4096


@storage_errors
def _open_new(path: Path) -> IO[bytes]:
    return path.open("xb")


class DiskWriter:
    """Streams one version into tmp/ while computing its md5 and size."""

    def __init__(
        self,
        store: DiskStore,
        partition: int,
        obj_hash: str,
        path: Path,
        fh: IO[bytes],
        *,
        sha256: bool = False,
        vouched: Vouched | None = None,
    ) -> None:
        self._store = store
        self._partition = partition
        self._hash = obj_hash
        self._path = path
        self._fh = fh
        # A vouched copy is checked by its block sums: md5 is the costliest pass over the bytes.
        self._vouched = vouched
        self._md5 = None if vouched else hashlib.md5(usedforsecurity=False)
        self._sha256 = hashlib.sha256() if sha256 else None
        self._blocks = BlockSums()
        self.head = b""
        self._size = 0
        self._done = False

    @property
    def bytes_written(self) -> int:
        return self._size

    @storage_errors
    def _write_sync(self, chunk: bytes) -> None:
        self._fh.write(chunk)
        if self._md5 is not None:
            self._md5.update(chunk)
        self._blocks.update(chunk)
        if self._sha256 is not None:
            self._sha256.update(chunk)

    async def write(self, chunk: bytes) -> None:
        await asyncio.get_running_loop().run_in_executor(self._store.pool, self._write_sync, chunk)
        if len(self.head) < HEAD_BYTES:
            self.head += chunk[: HEAD_BYTES - len(self.head)]
        self._size += len(chunk)

    def _etag(self) -> str:
        if self._vouched is not None:
            return self._vouched.etag
        assert self._md5 is not None
        return self._md5.hexdigest()

    @property
    def sha256(self) -> str | None:
        return self._sha256.hexdigest() if self._sha256 is not None else None

    async def commit_pending(self, upload: PendingUpload) -> PendingUpload:
        """Keep the bytes as a pending direct upload: durable, but no version of any object."""
        done = PendingUpload(
            **{
                **asdict(upload),
                "size": self._size,
                "etag": self._etag(),
                "sha256": self.sha256,
                "blocks": self._blocks.finish(),
                "block_sum": CRC32C,
            }
        )
        await asyncio.get_running_loop().run_in_executor(
            self._store.pool, self._commit_pending_sync, done
        )
        self._done = True
        return done

    def _commit_pending_sync(self, upload: PendingUpload) -> None:
        self._fh.flush()
        if self._store.fsync:
            os.fsync(self._fh.fileno())
        self._fh.close()
        try:
            self._store.uploads.receive(self._path, upload)
        finally:
            self._store.release_tmp(self._path)

    async def commit(self, new: NewVersion, expected_size: int | None = None) -> ObjectMeta:
        if expected_size is not None and expected_size != self._size:
            raise IncompleteBody(f"received {self._size} bytes of {expected_size}")
        blocks = self._blocks.finish()
        if self._vouched is not None and blocks_digest(blocks) != self._vouched.blocks_digest:
            raise BadDigest("the body does not match the block checksums its sender vouched for")
        meta = ObjectMeta(
            bucket=new.bucket,
            key=new.key,
            version=new.version,
            size=self._size,
            etag=self._etag(),
            content_type=new.content_type,
            user_meta=dict(new.user_meta),
            blocks=blocks,
            block_sum=CRC32C,
        )
        async with self._store.lock(self._hash):
            result = await asyncio.get_running_loop().run_in_executor(
                self._store.pool, self._commit_sync, meta, new.create_only
            )
        self._done = True
        return result

    @storage_errors
    def _commit_sync(self, meta: ObjectMeta, create_only: bool) -> ObjectMeta:
        store = self._store
        self._fh.flush()
        if store.fsync:
            os.fsync(self._fh.fileno())
        self._fh.close()
        target = store.object_dir(self._partition, self._hash)
        current = store.newest_sync(target)
        if create_only and current is not None and not current.tombstone:
            self._discard_tmp()
            raise PreconditionFailed(
                f"version {current.version} exists and the write is create-only"
            )
        if current is not None and current.version >= meta.version:
            self._discard_tmp()
            if current.version == meta.version and current.etag == meta.etag:
                return current
            raise Superseded(current.version)
        meta_tmp = store.tmp_path()
        try:
            store.write_durably(meta_tmp, meta.to_json())
            store.make_dirs(target)
            # The data goes first and the metadata's rename is the commit point: a crash
            # between the two leaves an orphan .data that readers never consider.
            os.rename(self._path, target / f"{meta.version}.data")
            os.rename(meta_tmp, target / f"{meta.version}.meta")
            if store.fsync:
                fsync_dir(target)
        finally:
            meta_tmp.unlink(missing_ok=True)
            store.release_tmp(meta_tmp)
            store.release_tmp(self._path)
        store.drop_older(target, meta.version)
        return meta

    def _discard_tmp(self) -> None:
        self._path.unlink(missing_ok=True)
        self._store.release_tmp(self._path)

    async def abort(self) -> None:
        if self._done:
            return
        self._done = True
        await asyncio.get_running_loop().run_in_executor(self._store.pool, self._abort_sync)

    def _abort_sync(self) -> None:
        if not self._fh.closed:
            self._fh.close()
        self._discard_tmp()


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
        self, partition: int, obj_hash: str, *, sha256: bool = False, vouched: Vouched | None = None
    ) -> DiskWriter:
        path = self.tmp_path()
        opening = asyncio.get_running_loop().run_in_executor(self.pool, _open_new, path)
        try:
            fh = await asyncio.shield(opening)
        except BaseException:
            # Cancelled (the client hung up) while the thread may still create the file: remove
            # it once the open has finished, whichever way it ends.
            opening.add_done_callback(lambda done: self._drop_opened(path, done))
            raise
        return DiskWriter(self, partition, obj_hash, path, fh, sha256=sha256, vouched=vouched)

    def _drop_opened(self, path: Path, opening: asyncio.Future[IO[bytes]]) -> None:
        if not opening.cancelled() and opening.exception() is None:
            opening.result().close()
        path.unlink(missing_ok=True)
        self.release_tmp(path)

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
        tmp = self.tmp_path()
        try:
            self.write_durably(tmp, meta.to_json())
            self.make_dirs(target)
            os.rename(tmp, target / f"{meta.version}.ts")
            if self.fsync:
                fsync_dir(target)
        finally:
            tmp.unlink(missing_ok=True)
            self.release_tmp(tmp)
        self.drop_older(target, meta.version)
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
