"""The sweeper's Prometheus series, on the node's registry (dry runs count nothing)."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from shardgate.sweep_report import KINDS, SweepReport


@dataclass(frozen=True)
class SweeperMetrics:
    files: Counter
    bytes: Counter
    last_run: Gauge
    duration: Histogram
    errors: Counter

    @classmethod
    def create(cls, registry: CollectorRegistry) -> SweeperMetrics:
        metrics = cls(
            files=Counter(
                "shardgate_sweeper_reclaimed_files",
                "Files the sweeper removed, by kind of debris.",
                ["kind"],
                registry=registry,
            ),
            bytes=Counter(
                "shardgate_sweeper_reclaimed_bytes",
                "Bytes the sweeper freed, by kind of debris.",
                ["kind"],
                registry=registry,
            ),
            last_run=Gauge(
                "shardgate_sweeper_last_run_timestamp_seconds",
                "When the last sweep of this node finished (unix time).",
                registry=registry,
            ),
            duration=Histogram(
                "shardgate_sweeper_run_duration_seconds",
                "How long one sweep of this node took.",
                buckets=(0.01, 0.05, 0.25, 1, 5, 30, 120, 600, 3600),
                registry=registry,
            ),
            errors=Counter(
                "shardgate_sweeper_errors",
                "Files the sweeper should have removed and could not.",
                registry=registry,
            ),
        )
        for kind in KINDS:  # every kind shows from the start, at zero
            metrics.files.labels(kind)
            metrics.bytes.labels(kind)
        return metrics

    def record(self, report: SweepReport) -> None:
        if report.dry_run:
            return
        for kind in KINDS:
            self.files.labels(kind).inc(report.files[kind])
            self.bytes.labels(kind).inc(report.bytes[kind])
        self.errors.inc(report.errors)
