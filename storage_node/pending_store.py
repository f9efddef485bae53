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
from typing import TYPE_CHECKING, BinaryIO

from storage_node.disk_io import fsync_dir, storage_errors
from storage_node.errors import NoSuchUpload, Superseded, UploadIdUsed
from storage_node.records import NewVersion, ObjectMeta, PendingUpload
from storage_node.version_file import put_trailer

if TYPE_CHECKING:
    from storage_node.disk import DiskStore

HASH_CHUNK = 1 << 20
OPEN_ATTEMPTS = 5  # each a publish moving the upload's file between a lookup and its open


class DiskPendingUploads:
    def __init__(self, store: DiskStore) -> None:
        self._store = store
        self.root = store.root / "pending"
        self.root.mkdir(parents=True, exist_ok=True)
        self.active: set[str] = set()  # ids whose bodies are arriving now: never swept
        self._hashing: dict[str, asyncio.Future[str]] = {}  # sha256s being computed, by id

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
        return await asyncio.get_running_loop().run_in_executor(
            self._store.pool, self._read_state, upload_id
        )

    def _read_state(self, upload_id: str) -> PendingUpload | None:
        try:
            raw = self.state_file(upload_id).read_bytes()
        except FileNotFoundError:
            return None
        if b"upload_id" not in raw:
            return None  # claimed, still receiving or abandoned mid-way
        return PendingUpload.from_json(raw)

    async def with_sha256(self, upload: PendingUpload) -> PendingUpload:
        """The upload with its sha256: hashed from its bytes now, once, if its token bound none
        (a commit may state one; most state the md5, so uploads do not all pay for it). The
        hash runs without the object's lock, which a write of the object would wait for: the
        bytes never change once received, and the open file keeps them even if a publish
        moves it or a newer version replaces it meanwhile. Only the record takes the lock. A
        commit retried while the hash runs waits for that hash rather than starting another."""
        if upload.sha256 is not None:
            return upload
        hashing = self._hashing.get(upload.upload_id)
        if hashing is None:
            loop = asyncio.get_running_loop()
            hashing = loop.run_in_executor(self._store.pool, self._hash_sync, upload)
            self._hashing[upload.upload_id] = hashing
            hashing.add_done_callback(lambda done: self._hashed(upload.upload_id, done))
        digest = await asyncio.shield(hashing)
        return await self._store.locked(upload.obj_hash, self._record_sha256, upload, digest)

    def _hashed(self, upload_id: str, done: asyncio.Future[str]) -> None:
        if self._hashing.get(upload_id) is done:
            del self._hashing[upload_id]
        if not done.cancelled():
            done.exception()  # its waiters may all be gone: retrieved, so not logged as lost

    @storage_errors
    def _hash_sync(self, upload: PendingUpload) -> str:
        digest = hashlib.sha256()
        with self._open_body(upload) as fh:
            # Only the upload's bytes: a trailer follows them in a published version, or in a
            # pending file a publish cut short.
            left = upload.size
            while left > 0 and (chunk := fh.read(min(HASH_CHUNK, left))):
                digest.update(chunk)
                left -= len(chunk)
        return digest.hexdigest()

    def _open_body(self, upload: PendingUpload) -> BinaryIO:
        """The file holding the upload's bytes, open. Without the lock, a publish may move it
        between the lookup and the open, or a publish again move it back to pending/ and
        then into place: a lookup a moment later finds it where it went."""
        for _ in range(OPEN_ATTEMPTS - 1):
            try:
                return self._body_sync(upload)[0].open("rb")
            except (FileNotFoundError, NoSuchUpload):
                continue
        return self._body_sync(upload)[0].open("rb")

    @storage_errors
    def _record_sha256(self, upload: PendingUpload, digest: str) -> PendingUpload:
        fresh = self._read_state(upload.upload_id)
        if fresh is None:  # swept while it was hashed: nothing to record it in
            return replace(upload, sha256=digest)
        if fresh.sha256 is None:
            fresh = replace(fresh, sha256=digest)
            self.write_state(fresh)
        return fresh

    async def publish(self, upload: PendingUpload, new: NewVersion) -> ObjectMeta:
        """Turn a received upload into version `new.version` of its object (idempotent)."""
        return await self._store.locked(upload.obj_hash, self._publish_sync, upload, new)

    async def body(self, upload: PendingUpload) -> Path:
        """The file holding the upload's bytes (each up to its size; a trailer may follow)."""
        loop = asyncio.get_running_loop()
        path, _ = await loop.run_in_executor(self._store.pool, self._body_sync, upload)
        return path

    def _body_sync(self, upload: PendingUpload) -> tuple[Path, ObjectMeta | None]:
        """The pending file, or else the version an earlier publish made of it (the node may
        have stopped before recording that publish) and that version's metadata."""
        data = self.data(upload.upload_id)
        if data.exists():
            return data, None
        current = self._store.newest_sync(self._store.object_dir(upload.partition, upload.obj_hash))
        if current is None or not _carries(current, upload):
            raise NoSuchUpload(
                f"the bytes of upload {upload.upload_id} are gone from this node: it was"
                " published, and a newer write or a delete has replaced that version"
            )
        return self._store.data_path(upload.partition, upload.obj_hash, current.version), current

    @storage_errors
    def _publish_sync(self, upload: PendingUpload, new: NewVersion) -> ObjectMeta:
        target = self._store.object_dir(upload.partition, upload.obj_hash)
        current = self._store.newest_sync(target)
        if current is not None and current.version >= new.version:
            if current.version == new.version and _carries(current, upload):
                return current  # the same publish again, recorded or not
            raise Superseded(current.version)
        data, published = self._body_sync(upload)
        if published is not None:
            # Published before under an older version the catalog never recorded (the gateway
            # stopped, or this node did before recording the publish), and the commit retried:
            # the version's file is the upload again, to go in place as the version asked for.
            os.rename(
                self._store.data_path(upload.partition, upload.obj_hash, published.version), data
            )
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
            upload_id=upload.upload_id,
        )
        put_trailer(data, meta, fsync=self._store.fsync)
        self._store.install(target, meta, data)
        self.write_state(replace(upload, state="published", version=new.version))
        return meta

    async def drop(self, upload: PendingUpload) -> None:
        def drop() -> None:
            self.data(upload.upload_id).unlink(missing_ok=True)
            self.write_state(replace(upload, state="dropped"))

        await asyncio.get_running_loop().run_in_executor(self._store.pool, drop)


def _carries(meta: ObjectMeta, upload: PendingUpload) -> bool:
    """Whether stored version `meta` is a publish of this very upload, bytes and all."""
    return meta.upload_id == upload.upload_id and (
        meta.size,
        meta.etag,
        meta.blocks,
        meta.block_sum,
    ) == (upload.size, upload.etag, upload.blocks, upload.block_sum)
