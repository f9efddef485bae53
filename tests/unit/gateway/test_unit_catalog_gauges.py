"""The repair queue's depth: counted by the catalog, read onto the gateway's gauge by a job
that a failed read does not stop."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from prometheus_client import CollectorRegistry

from gateway.catalog import BucketRecord, ObjectRecord, Repair
from gateway.metrics import GatewayMetrics, refresh_catalog_gauges
from gateway.sqlite_catalog import SqliteCatalog
from shardgate.versions import format_version

V1 = format_version(1_000)


async def test_count_repairs_counts_every_queued_replica(tmp_path: Path) -> None:
    catalog = SqliteCatalog(tmp_path / "c.sqlite3")
    await catalog.open()
    try:
        await catalog.put_bucket(BucketRecord("photos", created=1.0))
        assert await catalog.count_repairs() == 0
        record = ObjectRecord("photos", "k", V1, 1, "e" * 32, "text/plain", ("n1", "n2"), {})
        repairs = [Repair("photos", "k", V1, "n3", "missed"), Repair("photos", "k", V1, "n4", "x")]
        await catalog.commit_object(record, repairs)
        assert await catalog.count_repairs() == 2
    finally:
        await catalog.close()


class _FlakyCatalog:
    """Fails its first count, then answers 7."""

    def __init__(self) -> None:
        self.calls = 0

    async def count_repairs(self) -> int:
        self.calls += 1
        if self.calls == 1:
            raise sqlite3.OperationalError("database is locked")
        return 7


async def test_a_failed_read_leaves_the_gauge_and_the_next_one_sets_it() -> None:
    registry = CollectorRegistry()
    metrics = GatewayMetrics.create(registry)
    catalog = _FlakyCatalog()
    await refresh_catalog_gauges(metrics, catalog)  # type: ignore[arg-type]
    assert registry.get_sample_value("shardgate_gateway_repair_queue_depth") == 0
    await refresh_catalog_gauges(metrics, catalog)  # type: ignore[arg-type]
    assert registry.get_sample_value("shardgate_gateway_repair_queue_depth") == 7
