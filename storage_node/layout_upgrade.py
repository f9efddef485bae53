"""Bringing a data directory written by an older shardgate to the current layout, once, when a
node opens it: a version kept as <version>.data beside <version>.meta becomes one file, its
metadata appended as a trailer (version_file)."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

from storage_node.disk_io import fsync_dir
from storage_node.records import ObjectMeta
from storage_node.version_file import NoTrailer, put_trailer, read_meta_at

if TYPE_CHECKING:
    from storage_node.disk import DiskStore

log = logging.getLogger(__name__)
FORMAT_FILE = "format"
LAYOUT = "2"  # 1 had no format file: a .meta beside each .data


def upgrade_layout(store: DiskStore) -> int:
    """Convert every version of the old layout in the store; how many were. Safe to run again
    after a crash part-way: a .meta goes only once its .data carries the trailer."""
    marker = store.root / FORMAT_FILE
    if marker.exists():
        found = marker.read_text().strip()
        if found != LAYOUT:
            raise RuntimeError(f"{store.root} holds layout {found!r}; this node reads {LAYOUT}")
        return 0
    targets = [p for p in sorted(store.objects.glob("*/*")) if p.is_dir()]
    if targets:
        log.info("upgrading %d object directories in %s", len(targets), store.root)
    converted = sum(_upgrade_dir(store, target) for target in targets)
    if targets:
        log.info("upgraded %d versions in %s to layout %s", converted, store.root, LAYOUT)
    partial = store.root / f"{FORMAT_FILE}.tmp"
    store.write_durably(partial, f"{LAYOUT}\n".encode())
    os.replace(partial, marker)
    if store.fsync:
        fsync_dir(store.root)
    return converted


def _upgrade_dir(store: DiskStore, target: Path) -> int:
    converted = 0
    for stem in sorted({name.partition(".")[0] for name in os.listdir(target)}):
        data, meta_file = target / f"{stem}.data", target / f"{stem}.meta"
        if meta_file.exists():
            converted += data.exists() and _convert(store, target, stem, data, meta_file)
            meta_file.unlink(missing_ok=True)  # converted, or set aside
        elif data.exists() and not _has_trailer(data):
            data.unlink()  # never committed: a crash fell between the old layout's two renames
    if store.fsync and target.exists():  # setting aside its only version removed it
        fsync_dir(target)
    return converted


def _convert(store: DiskStore, target: Path, stem: str, data: Path, meta_file: Path) -> bool:
    """Append the .meta to its .data as the trailer; a pair that cannot be is set aside."""
    try:
        meta = ObjectMeta.from_json(meta_file.read_bytes())
        put_trailer(data, meta, fsync=store.fsync)
    except (ValueError, TypeError) as exc:
        log.error("%s/%s cannot be upgraded, quarantined: %s", target, stem, exc)
        store.set_aside(target, stem, ("meta", "data"))
        return False
    return True


def _has_trailer(data: Path) -> bool:
    try:
        read_meta_at(data)
    except NoTrailer:
        return False
    return True
