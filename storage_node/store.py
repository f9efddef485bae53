"""The storage contract a node serves from, in the manner of Swift's DiskFile and tusd's stores.

A writer streams one new version into hidden space; `commit` makes it the visible version
atomically (or raises Superseded when a newer one is already there) and `abort` discards it.
Readers see only committed versions. The newest version or tombstone wins. Stores that keep
plain local files also offer `LocalFiles`, so a node can push a version's file to a peer.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from storage_node.records import NewVersion, ObjectMeta, Vouched


@dataclass(frozen=True)
class Usage:
    free_bytes: int
    total_bytes: int


class ObjectWriter(Protocol):
    @property
    def bytes_written(self) -> int: ...

    async def write(self, *pieces: bytes) -> None:
        """Append a chunk, whole or as the network reads it came in."""

    def vouch(self, vouched: Vouched) -> None:
        """What the sender vouches for, learnt only at the body's end; checked at commit."""

    async def commit(self, new: NewVersion, expected_size: int | None = None) -> ObjectMeta:
        """Publish the version; IncompleteBody if fewer bytes than expected arrived."""

    async def abort(self) -> None:
        """Discard whatever was written; harmless after commit."""


class Store(Protocol):
    async def create_writer(
        self,
        partition: int,
        obj_hash: str,
        *,
        vouched: Vouched | None = None,
        md5: bool = True,
    ) -> ObjectWriter:
        """A writer for a new version; `vouched` when a peer copies a version it holds, md5=False
        when the sender will vouch at the body's end instead."""

    async def newest(self, partition: int, obj_hash: str) -> ObjectMeta | None:
        """The newest committed version or tombstone, or None."""

    def read(
        self, partition: int, obj_hash: str, meta: ObjectMeta, start: int, end: int
    ) -> AsyncIterator[bytes]:
        """Bytes [start, end) of the committed version `meta`."""

    async def write_tombstone(
        self, partition: int, obj_hash: str, meta: ObjectMeta
    ) -> ObjectMeta: ...

    async def discard(self, partition: int, obj_hash: str, version: str) -> bool:
        """Remove exactly this committed version (a write that missed its quorum)."""

    async def list_partition(self, partition: int) -> list[tuple[str, ObjectMeta]]:
        """(hash, newest meta) for every object the partition holds."""

    async def usage(self) -> Usage: ...


@runtime_checkable
class LocalFiles(Protocol):
    def data_path(self, partition: int, obj_hash: str, version: str) -> Path:
        """The version's file; its bytes are the first `size`, its metadata follows them."""
