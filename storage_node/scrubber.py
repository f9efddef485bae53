"""The scrubber: re-reads every stored version at a bounded rate and checks it against its md5
and block checksums. A copy that fails is quarantined and a good one is asked of another
replica; reads that find a bad block report it the same way."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from shardgate.block_sums import BLOCK_SIZE
from storage_node.blocks import block_sum, has_checksums
from storage_node.disk import DiskStore
from storage_node.records import ObjectMeta
from storage_node.replicator import Replicator
from storage_node.scrubber_metrics import ScrubberMetrics
from storage_node.verified import quarantine

log = logging.getLogger(__name__)


class Quarantine:
    """Takes a corrupt copy out of service and has it replaced in the background."""

    def __init__(
        self,
        store: DiskStore,
        metrics: ScrubberMetrics,
        replicator: Callable[[], Replicator | None],
    ) -> None:
        self._store = store
        self._metrics = metrics
        self._replicator = replicator
        self._restores: set[asyncio.Task[bool]] = set()

    async def report(self, partition: int, obj_hash: str, meta: ObjectMeta, found_by: str) -> None:
        if not await quarantine(self._store, partition, obj_hash, meta.version):
            return  # replaced or quarantined meanwhile
        self._metrics.corrupt.labels(found_by).inc()
        log.error(
            "corrupt copy of %s/%s version %s (found by %s) quarantined",
            meta.bucket,
            meta.key,
            meta.version,
            found_by,
        )
        replicator = self._replicator()
        if replicator is not None:
            task = asyncio.create_task(replicator.restore(partition, obj_hash, meta.version))
            self._restores.add(task)
            task.add_done_callback(self._restores.discard)


@dataclass
class ScrubReport:
    objects: int = 0
    bytes: int = 0
    corrupt: int = 0


class Scrubber:
    def __init__(
        self,
        store: DiskStore,
        quarantine: Quarantine,
        metrics: ScrubberMetrics,
        *,
        rate: float,
    ) -> None:
        self._store = store
        self._quarantine = quarantine
        self._metrics = metrics
        self._rate = rate

    async def scrub_once(self) -> ScrubReport:
        """One pass over every live version, at most `rate` bytes a second."""
        report = ScrubReport()
        started = time.monotonic()
        loop = asyncio.get_running_loop()
        partitions = await loop.run_in_executor(self._store.pool, self._partitions)
        for done, partition in enumerate(partitions):
            hashes = await loop.run_in_executor(self._store.pool, self._hashes, partition)
            for obj_hash in hashes:
                meta = await self._store.newest(partition, obj_hash)
                if meta is None or meta.tombstone:
                    continue
                if not await self._sound(partition, obj_hash, meta, report, started):
                    report.corrupt += 1
                    await self._quarantine.report(partition, obj_hash, meta, "scrub")
            self._metrics.progress.set((done + 1) / len(partitions))
        self._metrics.last_pass.set(time.time())
        return report

    def _partitions(self) -> list[int]:
        return sorted(int(p.name) for p in self._store.objects.iterdir() if p.name.isdigit())

    def _hashes(self, partition: int) -> list[str]:
        return sorted(p.name for p in (self._store.objects / str(partition)).iterdir())

    async def _sound(
        self, partition: int, obj_hash: str, meta: ObjectMeta, report: ScrubReport, started: float
    ) -> bool:
        """True when every block and the whole md5 match (or the version went meanwhile)."""
        loop = asyncio.get_running_loop()
        path = self._store.data_path(partition, obj_hash, meta.version)
        try:
            fh = await loop.run_in_executor(self._store.pool, path.open, "rb")
        except FileNotFoundError:
            return True  # replaced since it was listed
        md5 = hashlib.md5(usedforsecurity=False)
        checked = has_checksums(meta)
        size = 0
        try:
            for index in range(-(-meta.size // BLOCK_SIZE)):
                wanted = min(BLOCK_SIZE, meta.size - index * BLOCK_SIZE)  # not the trailer
                block = await loop.run_in_executor(self._store.pool, fh.read, wanted)
                size += len(block)
                md5.update(block)
                if checked and block_sum(block, meta.block_sum) != meta.blocks[index]:
                    return False
                report.bytes += len(block)
                self._metrics.bytes.inc(len(block))
                await self._pace(report.bytes, started)
        finally:
            await loop.run_in_executor(self._store.pool, fh.close)
        report.objects += 1
        self._metrics.objects.inc()
        return size == meta.size and md5.hexdigest() == meta.etag

    async def _pace(self, done: int, started: float) -> None:
        ahead = done / self._rate - (time.monotonic() - started)
        if ahead > 0:
            await asyncio.sleep(ahead)
