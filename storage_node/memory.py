"""An in-memory Store with the disk store's semantics, for tests and for trying the node API."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator

from shardgate.block_sums import BlockSums
from storage_node.errors import BadDigest, IncompleteBody, PreconditionFailed, Superseded
from storage_node.records import NewVersion, ObjectMeta, Vouched
from storage_node.store import Usage


class MemoryWriter:
    def __init__(
        self, store: MemoryStore, partition: int, obj_hash: str, vouched: Vouched | None
    ) -> None:
        self._store = store
        self._key = (partition, obj_hash)
        self._buffer = bytearray()
        self._vouched = vouched

    def vouch(self, vouched: Vouched) -> None:
        self._vouched = vouched

    @property
    def bytes_written(self) -> int:
        return len(self._buffer)

    async def write(self, *pieces: bytes) -> None:
        for piece in pieces:
            self._buffer += piece

    async def commit(self, new: NewVersion, expected_size: int | None = None) -> ObjectMeta:
        if expected_size is not None and expected_size != len(self._buffer):
            raise IncompleteBody(f"received {len(self._buffer)} bytes of {expected_size}")
        etag = hashlib.md5(self._buffer, usedforsecurity=False).hexdigest()
        if self._vouched is not None and self._vouched != Vouched(etag, _digest(self._buffer)):
            raise BadDigest("the body does not match the md5 or block sums vouched for")
        meta = ObjectMeta(
            bucket=new.bucket,
            key=new.key,
            version=new.version,
            size=len(self._buffer),
            etag=etag,
            content_type=new.content_type,
            user_meta=dict(new.user_meta),
        )
        current = self._store.objects.get(self._key)
        if new.create_only and current is not None and not current[0].tombstone:
            raise PreconditionFailed(
                f"version {current[0].version} exists and the write is create-only"
            )
        if current is not None and current[0].version >= meta.version:
            if current[0].version == meta.version and current[0].etag == meta.etag:
                return current[0]
            raise Superseded(current[0].version)
        self._store.objects[self._key] = (meta, bytes(self._buffer))
        return meta

    async def abort(self) -> None:
        self._buffer.clear()


def _digest(data: bytes | bytearray) -> str:
    sums = BlockSums(keep=False)
    sums.update(bytes(data))
    return sums.digest()


class MemoryStore:
    """Holds only the newest version of each object, as the disk store does after a commit."""

    def __init__(self, capacity: int = 1 << 30) -> None:
        self.objects: dict[tuple[int, str], tuple[ObjectMeta, bytes]] = {}
        self._capacity = capacity

    async def create_writer(
        self,
        partition: int,
        obj_hash: str,
        *,
        vouched: Vouched | None = None,
        md5: bool = True,
    ) -> MemoryWriter:
        # Keeps no block sums, so it hashes every body and checks what was vouched for.
        return MemoryWriter(self, partition, obj_hash, vouched)

    async def newest(self, partition: int, obj_hash: str) -> ObjectMeta | None:
        entry = self.objects.get((partition, obj_hash))
        return entry[0] if entry else None

    async def read(
        self, partition: int, obj_hash: str, meta: ObjectMeta, start: int, end: int
    ) -> AsyncIterator[bytes]:
        stored, body = self.objects[(partition, obj_hash)]
        if stored.version != meta.version:
            raise FileNotFoundError(f"version {meta.version} was replaced")
        yield body[start:end]

    async def write_tombstone(self, partition: int, obj_hash: str, meta: ObjectMeta) -> ObjectMeta:
        current = self.objects.get((partition, obj_hash))
        if current is not None and current[0].version >= meta.version:
            if current[0].tombstone and current[0].version == meta.version:
                return current[0]
            raise Superseded(current[0].version)
        self.objects[(partition, obj_hash)] = (meta, b"")
        return meta

    async def discard(self, partition: int, obj_hash: str, version: str) -> bool:
        current = self.objects.get((partition, obj_hash))
        if current is None or current[0].version != version or current[0].tombstone:
            return False
        del self.objects[(partition, obj_hash)]
        return True

    async def list_partition(self, partition: int) -> list[tuple[str, ObjectMeta]]:
        return sorted((h, meta) for (p, h), (meta, _) in self.objects.items() if p == partition)

    async def usage(self) -> Usage:
        used = sum(len(body) for _, body in self.objects.values())
        return Usage(free_bytes=max(self._capacity - used, 0), total_bytes=self._capacity)
