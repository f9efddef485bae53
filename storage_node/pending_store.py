"""Direct uploads received with a token and kept pending until the gateway commits them.

Under the data directory: pending/<upload id>.data (the bytes) and pending/<upload id>.json
(the state). The state file is created with O_EXCL when an upload starts and kept after
publishing or dropping, so an upload id can never be used twice.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from storage_node.disk_io import fsync_dir, storage_errors
from storage_node.errors import Superseded, UploadIdUsed
from storage_node.records import NewVersion, ObjectMeta, PendingUpload
from storage_node.version_file import put_trailer

if TYPE_CHECKING:
    from storage_node.disk import DiskStore

HASH_CHUNK = 1 << 20


class DiskPendingUploads:
    def __init__(self, store: DiskStore) -> None:
        self._store = store
        self.root = store.root / "pending"
        self.root.mkdir(parents=True, exist_ok=True)
        self.active: set[str] = set()  # ids whose bodies are arriving now: never swept

    def receive(self, tmp: Path, upload: PendingUpload) -> None:
        """Move a finished, fsynced temp file into place and record the upload (sync)."""
        os.rename(tmp, self.data(upload.upload_id))
        self.write_state(upload)

    def data(self, upload_id: str) -> Path:
        return self.root / f"{upload_id}.data"

    def state_file(self, upload_id: str) -> Path:
        return self.root / f"{upload_id}.json"

    def write_state(self, upload: PendingUpload) -> None:
        tmp = self._store.tmp_path()
        try:
            self._store.write_durably(tmp, upload.to_json())
            os.replace(tmp, self.state_file(upload.upload_id))
            if self._store.fsync:
                fsync_dir(self.root)
        finally:
            tmp.unlink(missing_ok=True)
            self._store.release_tmp(tmp)

    async def claim(self, upload_id: str, commit_by: float) -> None:
        """Mark the id used for good (O_EXCL, so two racing uploads cannot both claim it) and
        active until `release`."""

        def claim() -> None:
            try:
                fd = os.open(
                    self.state_file(upload_id), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600
                )
            except FileExistsError:
                raise UploadIdUsed(f"upload id {upload_id} was used already") from None
            with os.fdopen(fd, "wb") as fh:
                fh.write(json.dumps({"state": "receiving", "commit_by": commit_by}).encode())

        await asyncio.get_running_loop().run_in_executor(self._store.pool, claim)
        self.active.add(upload_id)

    def release(self, upload_id: str) -> None:
        self.active.discard(upload_id)

    async def get(self, upload_id: str) -> PendingUpload | None:
        def read() -> PendingUpload | None:
            try:
                raw = self.state_file(upload_id).read_bytes()
            except FileNotFoundError:
                return None
            if b"upload_id" not in raw:
                return None  # claimed, still receiving or abandoned mid-way
            return PendingUpload.from_json(raw)

        return await asyncio.get_running_loop().run_in_executor(self._store.pool, read)

    async def with_sha256(self, upload: PendingUpload) -> PendingUpload:
        """The upload with its sha256: hashed from its bytes now, once, if its token bound none
        (a commit may state one; most state the md5, so uploads do not all pay for it)."""
        if upload.sha256 is not None or upload.state != "received":
            return upload

        @storage_errors
        def hashed() -> PendingUpload:
            digest = hashlib.sha256()
            with self.data(upload.upload_id).open("rb") as fh:
                # Only the upload's bytes: a publish cut short may have left a trailer after them.
                left = upload.size
                while left > 0 and (chunk := fh.read(min(HASH_CHUNK, left))):
                    digest.update(chunk)
                    left -= len(chunk)
            done = replace(upload, sha256=digest.hexdigest())
            self.write_state(done)
            return done

        return await asyncio.get_running_loop().run_in_executor(self._store.pool, hashed)

    async def publish(self, upload: PendingUpload, new: NewVersion) -> ObjectMeta:
        """Turn a received upload into version `new.version` of its object (idempotent)."""
        return await self._store.locked(upload.obj_hash, self._publish_sync, upload, new)

    @storage_errors
    def _publish_sync(self, upload: PendingUpload, new: NewVersion) -> ObjectMeta:
        target = self._store.object_dir(upload.partition, upload.obj_hash)
        current = self._store.newest_sync(target)
        if (
            upload.state == "published"
            and current is not None
            and current.version == upload.version
        ):
            return current
        if current is not None and current.version >= new.version:
            raise Superseded(current.version)
        meta = ObjectMeta(
            bucket=upload.bucket,
            key=upload.key,
            version=new.version,
            size=upload.size,
            etag=upload.etag,
            content_type=upload.content_type,
            user_meta=dict(new.user_meta),
            blocks=upload.blocks,
            block_sum=upload.block_sum,
        )
        data = self.data(upload.upload_id)
        put_trailer(data, meta, fsync=self._store.fsync)
        self._store.install(target, meta, data)
        self.write_state(replace(upload, state="published", version=new.version))
        return meta

    async def drop(self, upload: PendingUpload) -> None:
        def drop() -> None:
            self.data(upload.upload_id).unlink(missing_ok=True)
            self.write_state(replace(upload, state="dropped"))

        await asyncio.get_running_loop().run_in_executor(self._store.pool, drop)
