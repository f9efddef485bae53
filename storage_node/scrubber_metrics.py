"""The scrubber's Prometheus series, on the node's registry."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge


@dataclass(frozen=True)
class ScrubberMetrics:
    objects: Counter
    bytes: Counter
    corrupt: Counter
    last_pass: Gauge
    progress: Gauge

    @classmethod
    def create(cls, registry: CollectorRegistry) -> ScrubberMetrics:
        metrics = cls(
            objects=Counter(
                "shardgate_scrubber_checked_objects",
                "Stored versions the scrubber re-read and checked.",
                registry=registry,
            ),
            bytes=Counter(
                "shardgate_scrubber_checked_bytes",
                "Bytes the scrubber re-read.",
                registry=registry,
            ),
            corrupt=Counter(
                "shardgate_scrubber_corrupt_objects",
                "Copies found corrupt and quarantined, by who found them (scrub, read, or lookup:"
                " a version file whose metadata trailer is damaged).",
                ["found_by"],
                registry=registry,
            ),
            last_pass=Gauge(
                "shardgate_scrubber_last_pass_timestamp_seconds",
                "When the scrubber last finished a pass over this node (unix time).",
                registry=registry,
            ),
            progress=Gauge(
                "shardgate_scrubber_pass_progress_ratio",
                "How far the current pass is, 0 to 1, by partitions done.",
                registry=registry,
            ),
        )
        for found_by in ("scrub", "read", "lookup"):
            metrics.corrupt.labels(found_by)
        return metrics
