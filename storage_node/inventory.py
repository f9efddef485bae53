"""What a node holds, counted for its gauges: live objects, their bytes, and tombstones.

The disk store is counted by listing names and reading each live object's 16-byte footer for
its size, in the store's own thread pool, every `inventory_interval` seconds, not per scrape.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from pathlib import Path

from storage_node.disk import DiskStore
from storage_node.memory import MemoryStore
from storage_node.store import Store
from storage_node.version_file import NoTrailer, body_size_at


@dataclass(frozen=True)
class Inventory:
    objects: int
    object_bytes: int
    tombstones: int


async def take_inventory(store: Store) -> Inventory | None:
    """Count the store's contents, or None for a store that cannot be counted."""
    if isinstance(store, DiskStore):
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(store.pool, count_objects_dir, store.objects)
    if isinstance(store, MemoryStore):
        metas = [meta for meta, _ in store.objects.values()]
        live = [meta for meta in metas if not meta.tombstone]
        return Inventory(len(live), sum(meta.size for meta in live), len(metas) - len(live))
    return None


def count_objects_dir(root: Path) -> Inventory:
    """Walk objects/<partition>/<hash>/; an object's newest committed entry decides its state."""
    objects = object_bytes = tombstones = 0
    for partition in _subdirs(root):
        for object_dir in _subdirs(partition):
            state = _newest(object_dir)
            if state is None:
                continue
            version, tombstone = state
            if tombstone:
                tombstones += 1
                continue
            try:
                object_bytes += body_size_at(os.path.join(object_dir, f"{version}.data"))
            except FileNotFoundError:
                continue  # replaced or withdrawn while we walked
            except NoTrailer:
                continue  # no footer: the store does not serve it either
            objects += 1
    return Inventory(objects, object_bytes, tombstones)


def _subdirs(path: Path | str) -> list[str]:
    try:
        with os.scandir(path) as entries:
            return [entry.path for entry in entries if entry.is_dir(follow_symlinks=False)]
    except FileNotFoundError:
        return []


def _newest(object_dir: str) -> tuple[str, bool] | None:
    """(version, is tombstone) of the newest committed entry."""
    try:
        names = os.listdir(object_dir)
    except FileNotFoundError:
        return None
    suffixes: dict[str, set[str]] = {}
    for name in names:
        stem, _, suffix = name.partition(".")
        suffixes.setdefault(stem, set()).add(suffix)
    committed = [s for s, kinds in suffixes.items() if kinds & {"data", "ts"}]
    if not committed:
        return None
    newest = max(committed)
    return newest, "ts" in suffixes[newest]
