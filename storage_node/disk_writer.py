"""Writing one new version on a disk store: stream it into tmp/ while computing its md5, block
sums and size, then commit it into place atomically, as a version or as a pending upload."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
from collections.abc import Callable
from concurrent.futures import Future, wait
from dataclasses import replace
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TypeVar

from shardgate.block_sums import CRC32C, BlockSums
from storage_node.disk_io import flush_behind, run_to_end, start_writeback, storage_errors
from storage_node.errors import BadDigest, IncompleteBody, PreconditionFailed, Superseded
from storage_node.records import NewVersion, ObjectMeta, PendingUpload, Vouched
from storage_node.version_file import trailer

if TYPE_CHECKING:
    from storage_node.disk import DiskStore

HEAD_BYTES = 4096
WRITEBACK_BYTES = 8 * 1024 * 1024  # written bytes handed to the kernel's writeback at a time
T = TypeVar("T")


class DiskWriter:
    """Streams one version into tmp/ while computing its md5 and size.

    The first chunk is held until the second arrives or the commit: the file is created, written
    and, for a body of one chunk, fsynced and put in place in a single disk-thread hop."""

    def __init__(
        self,
        store: DiskStore,
        partition: int,
        obj_hash: str,
        path: Path,
        *,
        sha256: bool = False,
        md5: bool = True,
        vouched: Vouched | None = None,
    ) -> None:
        self._store = store
        self._partition = partition
        self._hash = obj_hash
        self._path = path
        self._fh: IO[bytes] | None = None
        self._held: tuple[bytes, ...] | None = None
        self._job: Future[Any] | None = None
        # A vouched copy is checked by its block sums: md5 is the costliest pass over the bytes.
        # So is an early copy, whose md5 its source vouches for when the commit publishes it.
        self._vouched = vouched
        self._md5 = hashlib.md5(usedforsecurity=False) if md5 and not vouched else None
        self._sha256 = hashlib.sha256() if sha256 else None
        self._blocks = BlockSums()
        self.head = b""
        self._size = 0
        self._writeback_from = 0
        self._flushing: Future[None] | None = None
        self._done = False

    def vouch(self, vouched: Vouched) -> None:
        """What the sender vouches for, known only once the body has ended (a trailer); the
        commit checks the block sums against it."""
        self._vouched = vouched

    @property
    def bytes_written(self) -> int:
        return self._size

    async def _run(self, func: Callable[..., T], *args: object) -> T:
        """Run on a disk thread, to the end even if the caller is cancelled (a commit holds the
        object's lock throughout). The job is kept so that `abort`, which another task may
        call, can wait for it: the thread may still be creating the file."""
        job = self._store.pool.submit(func, *args)
        self._job = job
        return await run_to_end(job)

    def _file(self) -> IO[bytes]:
        """The tmp file, created on the first hop to a disk thread with the held chunk in it."""
        if self._fh is None:
            self._fh = self._path.open("xb")
            held, self._held = self._held, None
            if held:
                self._append(self._fh, held)
        return self._fh

    def _append(self, fh: IO[bytes], pieces: tuple[bytes, ...]) -> None:
        for piece in pieces:
            fh.write(piece)
            if self._md5 is not None:
                self._md5.update(piece)
            self._blocks.update(piece)
            if self._sha256 is not None:
                self._sha256.update(piece)

    @storage_errors
    def _write_sync(self, pieces: tuple[bytes, ...]) -> None:
        fh = self._file()
        self._append(fh, pieces)
        # Writes are awaited one at a time: _size is stable.
        written = self._size + sum(map(len, pieces))
        if self._store.fsync and written - self._writeback_from >= WRITEBACK_BYTES:
            fh.flush()
            start_writeback(fh.fileno(), self._writeback_from, written - self._writeback_from)
            self._writeback_from = written
            self._flush_behind()

    def _flush_behind(self) -> None:
        """Ask for a flush of the file unless one is still pending: a slow disk gets at most one
        per upload, not one per window."""
        pending = self._flushing is not None and not self._flushing.done()
        if pending or not self._store.flush_behind:
            return
        with contextlib.suppress(RuntimeError):  # the store is closing: a flush is optional
            self._flushing = self._store.flush_pool.submit(flush_behind, self._path)

    def _cancel_flush(self) -> None:
        """Drop a flush not yet started: the commit's own fsync, or the discard, makes it moot."""
        if self._flushing is not None:
            self._flushing.cancel()

    async def write(self, *pieces: bytes) -> None:
        """Append a chunk, whole or as the network reads it came in, which are not joined: a
        join would copy every byte once more."""
        for piece in pieces:
            if len(self.head) >= HEAD_BYTES:
                break
            self.head += piece[: HEAD_BYTES - len(self.head)]
        if self._fh is None and self._held is None:
            self._held = pieces
        else:
            await self._run(self._write_sync, pieces)
        self._size += sum(map(len, pieces))

    def _etag(self) -> str:
        if self._vouched is not None:
            return self._vouched.etag
        return self._md5.hexdigest() if self._md5 is not None else ""

    async def sha256(self) -> str | None:
        """The sha256 of everything written, if it was asked for."""
        if self._sha256 is None:
            return None
        if self._held is not None:
            await self._run(storage_errors(self._file))
        return self._sha256.hexdigest()

    async def sync(self) -> None:
        """Make the bytes written so far durable, so a commit after it has little left to do."""
        await self._run(self._sync)

    @storage_errors
    def _sync(self) -> IO[bytes]:
        fh = self._file()
        fh.flush()
        if self._store.fsync:
            os.fsync(fh.fileno())
        return fh

    async def commit_pending(self, upload: PendingUpload) -> PendingUpload:
        """Keep the bytes as a pending direct upload: durable, but no version of any object."""
        done: PendingUpload = await self._run(self._commit_pending_sync, upload)
        self._done = True
        return done

    def _commit_pending_sync(self, upload: PendingUpload) -> PendingUpload:
        self._cancel_flush()
        self._sync().close()
        done = replace(
            upload,
            size=self._size,
            etag=self._etag(),
            sha256=self._sha256.hexdigest() if self._sha256 is not None else None,
            blocks=self._blocks.finish(),
            block_sum=CRC32C,
        )
        try:
            self._store.uploads.receive(self._path, done)
        finally:
            self._store.release_tmp(self._path)
        return done

    async def commit(self, new: NewVersion, expected_size: int | None = None) -> ObjectMeta:
        if expected_size is not None and expected_size != self._size:
            raise IncompleteBody(f"received {self._size} bytes of {expected_size}")
        async with self._store.lock(self._hash):
            result: ObjectMeta = await self._run(self._commit_sync, new)
        self._done = True
        return result

    @storage_errors
    def _commit_sync(self, new: NewVersion) -> ObjectMeta:
        store = self._store
        self._cancel_flush()
        fh = self._file()
        blocks = self._blocks.finish()
        if self._vouched is not None and self._blocks.digest() != self._vouched.blocks_digest:
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
        target = store.object_dir(self._partition, self._hash)
        current = store.newest_sync(target)
        if new.create_only and current is not None and not current.tombstone:
            self._discard_tmp()
            raise PreconditionFailed(
                f"version {current.version} exists and the write is create-only"
            )
        if current is not None and current.version >= meta.version:
            self._discard_tmp()
            if current.version == meta.version and current.etag == meta.etag:
                return current
            raise Superseded(current.version)
        fh.write(trailer(meta))
        self._sync().close()
        try:
            store.install(target, meta, self._path)
        finally:
            store.release_tmp(self._path)
        return meta

    def _discard_tmp(self) -> None:
        self._cancel_flush()
        if self._fh is not None:
            with contextlib.suppress(OSError):  # a full disk fails the flush: the file goes anyway
                self._fh.close()
        self._path.unlink(missing_ok=True)
        self._store.release_tmp(self._path)

    async def abort(self) -> None:
        if self._done:
            return
        self._done = True
        self._held = None
        job = self._job
        if self._fh is None and (job is None or job.done()):
            self._store.release_tmp(self._path)  # nothing was created
            return
        # Shielded: once asked for, the clean-up runs even if this abort is cancelled in turn.
        cleanup = self._store.pool.submit(self._abort_sync, job)
        await asyncio.shield(asyncio.wrap_future(cleanup))

    def _abort_sync(self, job: Future[Any] | None) -> None:
        if job is not None:
            wait([job])  # a hop the caller stopped awaiting may still be creating the file
        self._discard_tmp()
