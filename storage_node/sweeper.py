"""The node's sweeper: reclaims what failed and abandoned uploads leave on this disk.

It never touches what a write in progress holds, however old: temp files are spared while the
store lists them as active, pending uploads while their body is arriving, and object
directories are cleaned only under the object's commit lock. Replicas the catalog no longer
has are found by the gateway (which asks `candidates`, checks its catalog, then calls
`discard`), because only the catalog knows which objects are still wanted.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shardgate.internal_api import PARTS_BUCKET
from shardgate.sweep_report import SweepReport
from shardgate.versions import version_to_timestamp
from storage_node.disk import TMP_SUFFIX, DiskStore
from storage_node.disk_io import fsync_dir, run_to_end
from storage_node.sweeper_metrics import SweeperMetrics

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Replica:
    """A committed version this node holds, named the way the catalog knows it."""

    partition: int
    obj_hash: str
    bucket: str
    key: str
    version: str

    def to_json(self) -> dict[str, Any]:
        return {
            "partition": self.partition,
            "hash": self.obj_hash,
            "bucket": self.bucket,
            "key": self.key,
            "version": self.version,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Replica:
        return cls(
            int(data["partition"]),
            str(data["hash"]),
            str(data["bucket"]),
            str(data["key"]),
            str(data["version"]),
        )


@dataclass(frozen=True)
class _Found:
    kind: str
    paths: tuple[Path, ...]
    size: int


def _sizes(paths: Sequence[Path]) -> int:
    total = 0
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            total += path.stat().st_size
    return total


class Sweeper:
    def __init__(
        self,
        store: DiskStore,
        *,
        grace: float,
        tombstone_age: float,
        metrics: SweeperMetrics | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._grace = grace
        self._tombstone_age = tombstone_age
        self._metrics = metrics
        self._clock = clock

    async def _in_pool(self, func: Callable[..., Any], *args: Any) -> Any:
        # To the end even if cancelled: most run under an object's lock, changing its files.
        return await run_to_end(self._store.pool.submit(func, *args))

    async def sweep(self, *, dry_run: bool) -> SweepReport:
        """One pass over temp files, pending uploads and object directories."""
        started = time.monotonic()
        report = SweepReport(dry_run)
        now = self._clock()
        for found in await self._in_pool(self._stale_tmp, now):
            if found.paths[0] not in self._store.active_tmp:
                await self._remove(report, found, dry_run)
        for upload_id, found in await self._in_pool(self._stale_pending, now):
            if upload_id not in self._store.uploads.active:
                await self._remove(report, found, dry_run)
        for obj_hash, target in await self._in_pool(self._dirty_dirs, now):
            async with self._store.lock(obj_hash):
                for found in await self._in_pool(self._dir_debris, target, now):
                    await self._remove(report, found, dry_run)
                if not dry_run:
                    await self._in_pool(self._drop_if_empty, target)
        self._finish(report, started)
        return report

    async def candidates(self, after: int, limit: int) -> tuple[list[Replica], int | None]:
        """Live replicas committed here longer than the grace age ago, in partition order from
        after `after`, whole partitions at a time; also the partition to continue after."""
        result: tuple[list[Replica], int | None] = await self._in_pool(
            self._candidates, after, limit, self._clock()
        )
        return result

    async def discard(self, replicas: Sequence[Replica], *, dry_run: bool) -> SweepReport:
        """Remove replicas the catalog does not want, each only if it is still the same version
        and still older than the grace age."""
        started = time.monotonic()
        report = SweepReport(dry_run)
        now = self._clock()
        for replica in dict.fromkeys(replicas):  # each once, so a dry run counts what a run does
            async with self._store.lock(replica.obj_hash):
                found = await self._in_pool(self._unwanted_version, replica, now)
                if found is not None:
                    await self._remove(report, found, dry_run)
                    if not dry_run:
                        await self._in_pool(self._drop_if_empty, found.paths[0].parent)
        self._finish(report, started)
        return report

    def _finish(self, report: SweepReport, started: float) -> None:
        if self._metrics is None or report.dry_run:
            return
        self._metrics.record(report)
        self._metrics.last_run.set(self._clock())
        self._metrics.duration.observe(time.monotonic() - started)

    async def _remove(self, report: SweepReport, found: _Found, dry_run: bool) -> None:
        names = [str(path.relative_to(self._store.root)) for path in found.paths]
        if dry_run:
            report.add(found.kind, names, found.size)
            return
        try:
            await self._in_pool(self._unlink, found.paths)
        except OSError as exc:
            log.warning("sweeper could not remove %s: %s", names, exc)
            report.errors += 1
            return
        report.add(found.kind, names, found.size)

    def _unlink(self, paths: Sequence[Path]) -> None:
        # A tombstone goes last: gone first, the versions it buries would be the object back.
        for path in sorted(paths, key=lambda p: p.suffix == ".ts"):
            path.unlink(missing_ok=True)
        if self._store.fsync:
            fsync_dir(paths[0].parent)

    def _old(self, path: Path, now: float) -> bool:
        try:
            return now - path.stat().st_mtime >= self._grace
        except FileNotFoundError:
            return False

    def _stale_tmp(self, now: float) -> list[_Found]:
        return [
            _Found("tmp", (path,), _sizes([path]))
            for path in sorted(self._store.tmp.iterdir())
            if path.name.endswith(TMP_SUFFIX) and self._old(path, now)
        ]

    def _stale_pending(self, now: float) -> list[tuple[str, _Found]]:
        """Pending uploads whose commit deadline passed more than the grace age ago; once it has,
        no token can start that upload id again, so its state file may go too."""
        root = self._store.uploads.root
        by_id: dict[str, list[Path]] = {}
        for path in sorted(root.iterdir()):
            by_id.setdefault(path.name.partition(".")[0], []).append(path)
        stale = []
        for upload_id, paths in by_id.items():
            if now >= self._deadline(root / f"{upload_id}.json", paths) + self._grace:
                stale.append((upload_id, _Found("pending", tuple(paths), _sizes(paths))))
        return stale

    @staticmethod
    def _deadline(state_file: Path, paths: list[Path]) -> float:
        with contextlib.suppress(OSError, ValueError, TypeError, AttributeError):
            commit_by = float(json.loads(state_file.read_bytes()).get("commit_by") or 0)
            if commit_by:
                return commit_by
        # No deadline recorded: the newest file's age stands in for it.
        return max((p.stat().st_mtime for p in paths if p.exists()), default=0.0)

    def _dirty_dirs(self, now: float) -> list[tuple[str, Path]]:
        """Object directories holding debris; each is looked at again under its lock."""
        dirs = []
        for partition in sorted(self._store.objects.iterdir()):
            for target in sorted(partition.iterdir()):
                try:
                    dirty = bool(self._dir_debris(target, now)) or not any(target.iterdir())
                except (OSError, ValueError):
                    dirty = True  # a commit is changing it right now: look again under the lock
                if dirty:
                    dirs.append((target.name, target))
        return dirs

    def _dir_debris(self, target: Path, now: float) -> list[_Found]:
        """Files of versions that are not the newest (a drop_older that did not finish), and
        the newest itself if it is an old tombstone."""
        try:
            names = sorted(os.listdir(target))
        except FileNotFoundError:
            return []
        stems: dict[str, list[Path]] = {}
        for name in names:
            stems.setdefault(name.partition(".")[0], []).append(target / name)
        newest = self._store.newest_sync(target)
        age = now - version_to_timestamp(newest.version) if newest is not None else 0.0
        if newest is not None and newest.tombstone and age >= self._tombstone_age:
            # Everything older goes with it, whatever its age: with the tombstone gone, an
            # older version left behind would be the object come back.
            paths = [path for group in stems.values() for path in group]
            return [_Found("tombstone", tuple(paths), _sizes(paths))]
        found = []
        for stem, paths in stems.items():
            if newest is not None and stem == newest.version:
                continue
            if all(self._old(path, now) for path in paths):
                found.append(_Found("tmp", tuple(paths), _sizes(paths)))
        return found

    @staticmethod
    def _drop_if_empty(target: Path) -> None:
        with contextlib.suppress(OSError):
            target.rmdir()

    def _candidates(self, after: int, limit: int, now: float) -> tuple[list[Replica], int | None]:
        partitions = sorted(int(p.name) for p in self._store.objects.iterdir() if p.name.isdigit())
        found: list[Replica] = []
        for partition in (p for p in partitions if p > after):
            base = self._store.objects / str(partition)
            for target in sorted(base.iterdir()):
                try:
                    meta = self._store.newest_sync(target)
                except (OSError, ValueError):
                    continue  # being rewritten right now, so not unwanted
                if meta is None or meta.tombstone:
                    continue
                if self._old(target / f"{meta.version}.data", now):
                    replica = Replica(partition, target.name, meta.bucket, meta.key, meta.version)
                    found.append(replica)
            if len(found) >= limit and partition != partitions[-1]:
                return found, partition
        return found, None

    def _unwanted_version(self, replica: Replica, now: float) -> _Found | None:
        target = self._store.object_dir(replica.partition, replica.obj_hash)
        meta = self._store.newest_sync(target)
        if meta is None or meta.tombstone or meta.version != replica.version:
            return None
        if (meta.bucket, meta.key) != (replica.bucket, replica.key):
            return None
        paths = [target / f"{meta.version}.data"]
        if not self._old(paths[0], now):
            return None
        kind = "parts" if meta.bucket == PARTS_BUCKET else "orphan"
        return _Found(kind, tuple(paths), _sizes(paths))
