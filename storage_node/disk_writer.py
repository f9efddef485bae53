"""Writing one new version on a disk store: stream it into tmp/ while computing its md5, block
sums and size, then commit it into place atomically, as a version or as a pending upload."""

from __future__ import annotations

import asyncio
import hashlib
import os
from dataclasses import asdict
from pathlib import Path
from typing import IO, TYPE_CHECKING

from shardgate.block_sums import CRC32C, BlockSums
from storage_node.disk_io import start_writeback, storage_errors
from storage_node.errors import BadDigest, IncompleteBody, PreconditionFailed, Superseded
from storage_node.records import NewVersion, ObjectMeta, PendingUpload, Vouched

if TYPE_CHECKING:
    from storage_node.disk import DiskStore

HEAD_BYTES = 4096
WRITEBACK_BYTES = 8 * 1024 * 1024  # written bytes handed to the kernel's writeback at a time


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
        md5: bool = True,
        vouched: Vouched | None = None,
    ) -> None:
        self._store = store
        self._partition = partition
        self._hash = obj_hash
        self._path = path
        self._fh = fh
        # A vouched copy is checked by its block sums: md5 is the costliest pass over the bytes.
        # So is an early copy, whose md5 its source vouches for when the commit publishes it.
        self._vouched = vouched
        self._md5 = hashlib.md5(usedforsecurity=False) if md5 and not vouched else None
        self._sha256 = hashlib.sha256() if sha256 else None
        self._blocks = BlockSums()
        self.head = b""
        self._size = 0
        self._writeback_from = 0
        self._done = False

    def vouch(self, vouched: Vouched) -> None:
        """What the sender vouches for, known only once the body has ended (a trailer); the
        commit checks the block sums against it."""
        self._vouched = vouched

    @property
    def bytes_written(self) -> int:
        return self._size

    @storage_errors
    def _write_sync(self, chunk: bytes) -> None:
        self._fh.write(chunk)
        written = self._size + len(chunk)  # writes are awaited one at a time: _size is stable
        if self._store.fsync and written - self._writeback_from >= WRITEBACK_BYTES:
            self._fh.flush()
            start_writeback(self._fh.fileno(), self._writeback_from, written - self._writeback_from)
            self._writeback_from = written
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
        return self._md5.hexdigest() if self._md5 is not None else ""

    @property
    def sha256(self) -> str | None:
        return self._sha256.hexdigest() if self._sha256 is not None else None

    async def sync(self) -> None:
        """Make the bytes written so far durable, so a commit after it has little left to do."""
        await asyncio.get_running_loop().run_in_executor(self._store.pool, self._sync)

    @storage_errors
    def _sync(self) -> None:
        self._fh.flush()
        if self._store.fsync:
            os.fsync(self._fh.fileno())

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
        self._sync()
        self._fh.close()
        try:
            self._store.uploads.receive(self._path, upload)
        finally:
            self._store.release_tmp(self._path)

    async def commit(self, new: NewVersion, expected_size: int | None = None) -> ObjectMeta:
        if expected_size is not None and expected_size != self._size:
            raise IncompleteBody(f"received {self._size} bytes of {expected_size}")
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
        async with self._store.lock(self._hash):
            result = await asyncio.get_running_loop().run_in_executor(
                self._store.pool, self._commit_sync, meta, new.create_only
            )
        self._done = True
        return result

    @storage_errors
    def _commit_sync(self, meta: ObjectMeta, create_only: bool) -> ObjectMeta:
        store = self._store
        self._sync()
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
        try:
            store.install(target, meta, self._path)
        finally:
            store.release_tmp(self._path)
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
