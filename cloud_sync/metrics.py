"""The mirror's Prometheus series (names fixed: dashboards and alert rules use them)."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge

from gateway.mirror_outbox import MirrorSummary


@dataclass(frozen=True)
class MirrorMetrics:
    queue_depth: Gauge
    lag_seconds: Gauge
    jobs: Counter
    bytes: Counter

    @classmethod
    def create(cls, registry: CollectorRegistry) -> MirrorMetrics:
        return cls(
            queue_depth=Gauge(
                "shardgate_mirror_queue_depth",
                "Mirror jobs not finished: queued (waiting, retrying or in flight) or failed.",
                ["state"],
                registry=registry,
            ),
            lag_seconds=Gauge(
                "shardgate_mirror_lag_seconds",
                "Age of the oldest queued mirror job (0 when none is).",
                registry=registry,
            ),
            jobs=Counter(
                "shardgate_mirror_jobs",
                "Mirror job attempts by operation and result.",
                ["op", "result"],
                registry=registry,
            ),
            bytes=Counter(
                "shardgate_mirror_bytes", "Object bytes uploaded to S3.", registry=registry
            ),
        )

    def show(self, summary: MirrorSummary, now: float) -> None:
        self.queue_depth.labels("queued").set(summary.queued)
        self.queue_depth.labels("failed").set(summary.failed)
        self.lag_seconds.set(summary.lag(now))
