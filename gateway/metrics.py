"""The gateway's Prometheus series, registered on the app's own registry.

Names follow Prometheus conventions (base units; prometheus_client adds `_total` to counters);
labels are bounded: node ids, operations, request kinds, never keys.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge

from gateway.catalog import Catalog

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GatewayMetrics:
    received_bytes: Counter
    sent_bytes: Counter
    uploads_in_progress: Gauge
    replica_write_failures: Counter
    quorum_failures: Counter
    handoff_writes: Counter
    repairs_queued: Counter
    read_failovers: Counter
    node_up: Gauge
    admission_rejections: Counter
    parts_received: Counter
    repair_queue_depth: Gauge
    node_connections_opened: Counter
    late_replica_writes: Gauge
    late_replica_failures: Counter

    @classmethod
    def create(cls, registry: CollectorRegistry, node_ids: Iterable[str] = ()) -> GatewayMetrics:
        """Counters with known label values start at 0, so rates and alerts see them at once
        (node_up is left to the first probe, a second away, rather than reading "down")."""
        metrics = cls._register(registry)
        for node_id in node_ids:
            metrics.replica_write_failures.labels(node_id)
        for op in ("put", "delete"):
            metrics.quorum_failures.labels(op)
        for kind in ("upload", "download", "other"):
            for code in ("ServiceUnavailable", "SlowDown"):
                metrics.admission_rejections.labels(kind, code)
        return metrics

    @classmethod
    def _register(cls, registry: CollectorRegistry) -> GatewayMetrics:
        return cls(
            received_bytes=Counter(
                "shardgate_gateway_received_bytes",
                "Object bytes received from clients.",
                registry=registry,
            ),
            sent_bytes=Counter(
                "shardgate_gateway_sent_bytes", "Object bytes sent to clients.", registry=registry
            ),
            uploads_in_progress=Gauge(
                "shardgate_gateway_uploads_in_progress",
                "Uploads streaming through now.",
                registry=registry,
            ),
            replica_write_failures=Counter(
                "shardgate_gateway_replica_write_failures",
                "Replica writes that failed, by node.",
                ["node"],
                registry=registry,
            ),
            quorum_failures=Counter(
                "shardgate_gateway_quorum_failures",
                "Operations that could not reach their quorum, by operation.",
                ["op"],
                registry=registry,
            ),
            handoff_writes=Counter(
                "shardgate_gateway_handoff_writes",
                "Replica writes sent to a handoff node because a primary was down.",
                registry=registry,
            ),
            repairs_queued=Counter(
                "shardgate_gateway_repairs_queued",
                "Replicas recorded for repair (missed writes, handoff copies).",
                registry=registry,
            ),
            read_failovers=Counter(
                "shardgate_gateway_read_failovers",
                "Reads that moved to another replica, before or during the body.",
                registry=registry,
            ),
            node_up=Gauge(
                "shardgate_gateway_node_up",
                "1 if the node answers its health probe.",
                ["node"],
                registry=registry,
            ),
            parts_received=Counter(
                "shardgate_gateway_parts_received",
                "Multipart parts stored (a part sent again counts again).",
                registry=registry,
            ),
            admission_rejections=Counter(
                "shardgate_gateway_admission_rejections",
                "Requests refused at once by the bulkhead, by kind and code (SlowDown: per key).",
                ["kind", "code"],
                registry=registry,
            ),
            repair_queue_depth=Gauge(
                "shardgate_gateway_repair_queue_depth",
                "Replicas recorded for repair and not yet repaired (read from the catalog).",
                registry=registry,
            ),
            node_connections_opened=Counter(
                "shardgate_gateway_node_connections_opened",
                "Connections opened to nodes (after a node restarts, or as concurrency grows).",
                registry=registry,
            ),
            late_replica_writes=Gauge(
                "shardgate_gateway_late_replica_writes",
                "Replica writes still finishing after their upload was answered (at W).",
                registry=registry,
            ),
            late_replica_failures=Counter(
                "shardgate_gateway_late_replica_failures",
                "Replica writes that failed after their upload was answered; each is repaired.",
                registry=registry,
            ),
        )


async def refresh_catalog_gauges(metrics: GatewayMetrics, catalog: Catalog) -> None:
    """Read the gauges only the catalog knows; a failed read is logged and retried next time."""
    try:
        metrics.repair_queue_depth.set(await catalog.count_repairs())
    except (sqlite3.Error, RuntimeError) as exc:  # the default catalog's failures
        log.warning("reading the repair queue depth failed: %s", exc)
