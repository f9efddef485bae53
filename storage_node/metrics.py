"""The node's Prometheus series, registered on the app's own registry."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge


@dataclass(frozen=True)
class NodeMetrics:
    bytes_received: Counter
    bytes_sent: Counter
    writes_in_progress: Gauge
    commits: Counter
    disk_free: Gauge
    disk_total: Gauge

    @classmethod
    def create(cls, registry: CollectorRegistry) -> NodeMetrics:
        return cls(
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
        )
