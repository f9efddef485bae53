"""The node's Prometheus series, registered on the app's own registry, and the jobs that read
its disk and inventory gauges (run on timers by the app)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge

from storage_node.inventory import take_inventory
from storage_node.store import Store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NodeMetrics:
    bytes_received: Counter
    bytes_sent: Counter
    writes_in_progress: Gauge
    commits: Counter
    early_copies: Counter
    peer_connections_opened: Counter
    disk_free: Gauge
    disk_total: Gauge
    objects: Gauge
    object_bytes: Gauge
    tombstones: Gauge
    inventory_timestamp: Gauge

    @classmethod
    def create(cls, registry: CollectorRegistry) -> NodeMetrics:
        metrics = cls(
            bytes_received=Counter(
                "shardgate_node_received_bytes",
                "Object bytes written to this node.",
                registry=registry,
            ),
            bytes_sent=Counter(
                "shardgate_node_sent_bytes", "Object bytes served by this node.", registry=registry
            ),
            writes_in_progress=Gauge(
                "shardgate_node_writes_in_progress",
                "Writes streaming into tmp/ now.",
                registry=registry,
            ),
            commits=Counter(
                "shardgate_node_commits",
                "Versions and tombstones this node was asked to commit, by result.",
                ["kind", "result"],
                registry=registry,
            ),
            early_copies=Counter(
                "shardgate_node_early_copies",
                "Direct uploads streamed to a peer while they arrived, by result: held, or "
                "dropped (the commit then copies the upload to that peer).",
                ["result"],
                registry=registry,
            ),
            peer_connections_opened=Counter(
                "shardgate_node_peer_connections_opened",
                "Connections opened to peer nodes (early copies, replication, repairs).",
                registry=registry,
            ),
            disk_free=Gauge(
                "shardgate_node_disk_free_bytes",
                "Free bytes on the data directory's disk.",
                registry=registry,
            ),
            disk_total=Gauge(
                "shardgate_node_disk_total_bytes",
                "Size of the data directory's disk.",
                registry=registry,
            ),
            objects=Gauge(
                "shardgate_node_objects",
                "Live objects (newest version not a tombstone) at the last inventory.",
                registry=registry,
            ),
            object_bytes=Gauge(
                "shardgate_node_object_bytes",
                "Bytes of the live objects' newest versions at the last inventory.",
                registry=registry,
            ),
            tombstones=Gauge(
                "shardgate_node_tombstones",
                "Objects whose newest entry is a tombstone, at the last inventory.",
                registry=registry,
            ),
            inventory_timestamp=Gauge(
                "shardgate_node_inventory_timestamp_seconds",
                "Unix time the last inventory finished.",
                registry=registry,
            ),
        )
        for result in ("held", "dropped"):
            metrics.early_copies.labels(result)
        return metrics


async def refresh_disk_gauges(metrics: NodeMetrics, store: Store) -> None:
    """Disk free and total: one statfs, cheap enough to read every few seconds."""
    try:
        usage = await store.usage()
    except OSError as exc:
        log.warning("reading disk usage failed: %s", exc)
        return
    metrics.disk_free.set(usage.free_bytes)
    metrics.disk_total.set(usage.total_bytes)


async def refresh_inventory(metrics: NodeMetrics, store: Store) -> None:
    """Object counts: a walk of every object directory, hence its own, longer interval."""
    try:
        counted = await take_inventory(store)
    except OSError as exc:
        log.warning("counting objects failed: %s", exc)
        return
    if counted is not None:
        metrics.objects.set(counted.objects)
        metrics.object_bytes.set(counted.object_bytes)
        metrics.tombstones.set(counted.tombstones)
        metrics.inventory_timestamp.set(time.time())
