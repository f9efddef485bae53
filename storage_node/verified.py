"""Reading a stored version block by block against its checksums, and quarantining a copy that
fails: it moves to quarantine/ (kept for inspection) and the node no longer holds that version,
so a read fails over and the replicator, or an explicit restore, brings a good copy back."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncGenerator

from storage_node.blocks import BLOCK_SIZE, read_blocks
from storage_node.disk import DiskStore
from storage_node.disk_io import fsync_dir
from storage_node.records import ObjectMeta

BLOCKS_PER_READ = 4  # one read and one executor hop per 4 MiB: fewer hops on large GETs


def has_checksums(meta: ObjectMeta) -> bool:
    return meta.size > 0 and len(meta.blocks) == -(-meta.size // BLOCK_SIZE)


async def verified_chunks(
    store: DiskStore, partition: int, obj_hash: str, meta: ObjectMeta, start: int, end: int
) -> AsyncGenerator[bytes, None]:
    """Bytes [start, end) of the version, each block checked before any of it is yielded;
    ReplicaCorrupt at the first block that fails."""
    loop = asyncio.get_running_loop()
    path = store.data_path(partition, obj_hash, meta.version)
    fh = await loop.run_in_executor(store.pool, path.open, "rb")
    last = (end - 1) // BLOCK_SIZE
    try:
        for first in range(start // BLOCK_SIZE, last + 1, BLOCKS_PER_READ):
            count = min(BLOCKS_PER_READ, last + 1 - first)
            data = await loop.run_in_executor(
                store.pool, read_blocks, fh, first, count, meta.size, meta.blocks
            )
            base = first * BLOCK_SIZE
            lo, hi = max(start - base, 0), min(end - base, len(data))
            yield data if (lo, hi) == (0, len(data)) else data[lo:hi]
    finally:
        await loop.run_in_executor(store.pool, fh.close)


async def quarantine(store: DiskStore, partition: int, obj_hash: str, version: str) -> bool:
    """Move the version out of the object's directory, if it is still there (True)."""
    async with store.lock(obj_hash):
        return await asyncio.get_running_loop().run_in_executor(
            None, _quarantine_sync, store, partition, obj_hash, version
        )


def _quarantine_sync(store: DiskStore, partition: int, obj_hash: str, version: str) -> bool:
    source = store.object_dir(partition, obj_hash)
    if not (source / f"{version}.meta").exists():
        return False
    target = store.root / "quarantine" / str(partition) / obj_hash
    target.mkdir(parents=True, exist_ok=True)
    for suffix in ("meta", "data"):  # the commit point first: the version vanishes whole
        with contextlib.suppress(FileNotFoundError):
            os.replace(source / f"{version}.{suffix}", target / f"{version}.{suffix}")
    if store.fsync:
        fsync_dir(source)
        fsync_dir(target)
    with contextlib.suppress(OSError):
        source.rmdir()
    return True
