"""The replicator's Prometheus series, on the node's registry."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

if TYPE_CHECKING:
    from storage_node.replicator import PassReport


@dataclass(frozen=True)
class ReplicatorMetrics:
    partitions: Gauge
    in_sync: Gauge
    pushed: Counter
    handoffs: Gauge
    errors: Counter
    last_pass: Gauge
    duration: Histogram

    @classmethod
    def create(cls, registry: CollectorRegistry) -> ReplicatorMetrics:
        metrics = cls(
            partitions=Gauge(
                "shardgate_replicator_partitions",
                "Partitions this node held at its last replication pass.",
                registry=registry,
            ),
            in_sync=Gauge(
                "shardgate_replicator_partitions_in_sync",
                "Partitions whose digest matched every other primary's at the last pass.",
                registry=registry,
            ),
            pushed=Counter(
                "shardgate_replicator_pushed_objects",
                "Versions and tombstones pushed to peers that lacked them, by kind.",
                ["kind"],
                registry=registry,
            ),
            handoffs=Gauge(
                "shardgate_replicator_handoffs_outstanding",
                "Objects held here for a partition this node is not a primary of.",
                registry=registry,
            ),
            errors=Counter(
                "shardgate_replicator_errors",
                "Peer calls of the replicator that failed (unreachable peers, refusals).",
                registry=registry,
            ),
            last_pass=Gauge(
                "shardgate_replicator_last_pass_timestamp_seconds",
                "When the last replication pass finished (unix time).",
                registry=registry,
            ),
            duration=Histogram(
                "shardgate_replicator_pass_duration_seconds",
                "How long one replication pass took.",
                buckets=(0.05, 0.25, 1, 5, 30, 120, 600, 3600),
                registry=registry,
            ),
        )
        for kind in ("version", "tombstone"):
            metrics.pushed.labels(kind)
        return metrics

    def record(self, report: PassReport, seconds: float) -> None:
        self.partitions.set(report.partitions)
        self.in_sync.set(report.in_sync)
        self.pushed.labels("version").inc(report.pushed)
        self.pushed.labels("tombstone").inc(report.tombstones)
        self.handoffs.set(report.handoffs_left)
        self.errors.inc(report.errors)
        self.last_pass.set(time.time())
        self.duration.observe(seconds)
