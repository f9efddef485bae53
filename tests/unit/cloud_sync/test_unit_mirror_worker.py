"""cloud_sync workers against an in-memory sink and the real SQLite outbox: puts (whole and
in parts), deletes, per-key order, retries with backoff, parking, requeue, and metrics."""

from __future__ import annotations

import hashlib
import random
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from cloud_sync import MemorySink, MirrorMetrics, MirrorWorker, Transfer, TransferLimits
from cloud_sync.worker import WorkerRules
from gateway.catalog import BucketRecord, ObjectRecord, PartRecord
from gateway.sqlite_catalog import SqliteCatalog
from shardgate.internal_api import VERSION_HEADER
from shardgate.versions import format_version

V1, V2, V3 = (format_version(n) for n in (1_000, 2_000, 3_000))


@dataclass
class Body:
    data: bytes
    headers: dict[str, str]

    async def chunks(self, size: int) -> AsyncIterator[bytes]:
        for start in range(0, len(self.data), 7):  # odd chunks: parts must be cut across them
            yield self.data[start : start + 7]


@dataclass
class Source:
    """Object bytes by (key, version); `serve_version` fakes a replica holding a newer one."""

    blobs: dict[tuple[str, str], bytes] = field(default_factory=dict)
    corrupt: bool = False

    async def open(self, record: ObjectRecord, range_header: str | None) -> Body:
        data = self.blobs[(record.key, record.version)]
        if self.corrupt:
            data = b"X" + data[1:]
        return Body(data, {VERSION_HEADER: record.version})


@dataclass
class Rig:
    catalog: SqliteCatalog
    sink: MemorySink
    source: Source
    worker: MirrorWorker
    registry: CollectorRegistry

    async def put(self, key: str, version: str, data: bytes) -> None:
        self.source.blobs[(key, version)] = data
        record = ObjectRecord(
            "b", key, version, len(data), hashlib.md5(data).hexdigest(), "text/plain", ("n1",)
        )
        assert await self.catalog.commit_object(record)

    async def drain(self) -> int:
        handled = 0
        while await self.worker.run_once():
            handled += 1
        return handled

    def count(self, op: str, result: str) -> float:
        value = self.registry.get_sample_value(
            "shardgate_mirror_jobs_total", {"op": op, "result": result}
        )
        return value or 0.0


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(2) as executor:
        yield executor


@pytest.fixture
async def rig(tmp_path: Path, pool: ThreadPoolExecutor) -> AsyncIterator[Rig]:
    catalog = SqliteCatalog(tmp_path / "c.sqlite3")
    await catalog.open()
    await catalog.put_bucket(BucketRecord("b", created=1.0, mirror=True))
    registry = CollectorRegistry()
    metrics = MirrorMetrics.create(registry)
    sink = MemorySink()
    source = Source()
    clock = [1_800_000_000.0]
    worker = MirrorWorker(
        worker_id="w",
        outbox=catalog,
        catalog=catalog,
        source=source,
        transfer=Transfer(sink, pool, TransferLimits(20, 8), on_bytes=metrics.bytes.inc),
        rules=WorkerRules(lease=30, max_attempts=3, backoff_base=1, backoff_cap=4, prefix="p/"),
        metrics=metrics,
        clock=lambda: clock[0],
        rng=random.Random(7),
    )
    rig = Rig(catalog, sink, source, worker, registry)
    rig.clock = clock  # type: ignore[attr-defined]
    yield rig
    await catalog.close()


async def test_small_and_large_objects_land_whole_and_are_recorded(rig: Rig) -> None:
    small, large = b"hello", bytes(range(50))
    await rig.put("s", V1, small)
    await rig.put("l", V1, large)
    assert await rig.drain() == 2
    assert rig.sink.data("p/b/s") == small
    assert rig.sink.data("p/b/l") == large
    parts = [op for op, key in rig.sink.calls if op == "put_part"]
    assert len(parts) == 7  # 50 bytes in 8-byte parts
    stored = rig.sink.objects["p/b/l"][1]
    assert stored.etag.endswith("-7") and stored.metadata["shardgate-version"] == V1
    record = await rig.catalog.get_object("b", "l")
    assert record is not None
    assert record.mirror.to_json() == {"state": "synced", "url": "memory://p/b/l"}
    assert rig.count("put", "done") == 2
    assert rig.registry.get_sample_value("shardgate_mirror_bytes_total") == 55


async def test_put_overwrite_delete_leaves_nothing_and_skips_stale_work(rig: Rig) -> None:
    await rig.put("k", V1, b"one")
    await rig.put("k", V2, b"two")
    assert await rig.catalog.remove_object("b", "k", V3)
    assert await rig.drain() == 3
    assert "p/b/k" not in rig.sink.objects
    # Both puts were superseded before sending a byte; only the delete reached the sink.
    assert [op for op, _ in rig.sink.calls] == ["delete", "head"]
    assert rig.count("put", "superseded") == 2 and rig.count("delete", "done") == 1


async def test_overwrite_then_put_leaves_the_newest(rig: Rig) -> None:
    await rig.put("k", V1, b"one")
    assert await rig.drain() == 1
    await rig.put("k", V2, b"two")
    await rig.put("k", V3, b"three")
    assert await rig.drain() == 2
    assert rig.sink.data("p/b/k") == b"three"
    assert rig.count("put", "superseded") == 1


async def test_failing_sink_retries_with_backoff_then_parks_and_requeue_finishes(
    rig: Rig,
) -> None:
    clock = rig.clock  # type: ignore[attr-defined]
    await rig.put("k", V1, b"data")
    rig.sink.failing = "connection refused"
    assert await rig.worker.run_once()
    assert not await rig.worker.run_once()  # backing off
    for _ in range(2):
        clock[0] += 10  # past the (capped) backoff
        assert await rig.worker.run_once()
    summary = await rig.catalog.mirror_summary(clock[0], recent=5)
    assert (summary.queued, summary.failed) == (0, 1)
    assert summary.recent_failures[0].last_error == "SinkError: connection refused"
    assert rig.count("put", "retry") == 2 and rig.count("put", "failed") == 1
    record = await rig.catalog.get_object("b", "k")
    assert record is not None and record.mirror.state == "failed"
    rig.sink.failing = None
    assert await rig.catalog.requeue_mirror_jobs(None, clock[0]) == 1
    assert await rig.drain() == 1
    assert rig.sink.data("p/b/k") == b"data"
    assert rig.count("put", "done") == 1


async def test_bytes_that_do_not_match_the_catalog_md5_are_not_accepted(rig: Rig) -> None:
    await rig.put("k", V1, b"x" * 30)  # multipart path: checked before completing
    await rig.put("s", V1, b"short")
    rig.source.corrupt = True
    assert await rig.drain() == 2
    assert rig.sink.objects == {}
    summary = await rig.catalog.mirror_summary(rig.clock[0], recent=5)  # type: ignore[attr-defined]
    assert summary.queued == 2
    assert rig.count("put", "retry") == 2
    assert ("abort_multipart", "p/b/k") in rig.sink.calls


async def test_manifest_objects_are_checked_by_size_and_s3_etag(rig: Rig) -> None:
    data = b"m" * 25
    part = PartRecord("u", 1, V1, 25, hashlib.md5(data).hexdigest(), ("n1",))
    rig.source.blobs[("m", V2)] = data
    record = ObjectRecord("b", "m", V2, 25, "f" * 32 + "-1", "text/plain", (), {}, None, (part,))
    assert await rig.catalog.commit_object(record)
    assert await rig.drain() == 1
    assert rig.sink.data("p/b/m") == data
