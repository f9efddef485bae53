"""Figures from one phase's timings (ops/s, MiB/s, p50/p99 latency, errors) and medians of them."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

MiB = 1024 * 1024


@dataclass(frozen=True)
class PhaseResult:
    ops: int  # operations that succeeded
    errors: int
    bytes: int
    seconds: float
    p50_ms: float
    p99_ms: float
    error_samples: tuple[str, ...] = ()

    @property
    def ops_per_s(self) -> float:
        return self.ops / self.seconds if self.seconds > 0 else 0.0

    @property
    def mib_per_s(self) -> float:
        return self.bytes / MiB / self.seconds if self.seconds > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "ops_per_s": self.ops_per_s, "mib_per_s": self.mib_per_s}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PhaseResult:
        return cls(
            ops=data["ops"],
            errors=data["errors"],
            bytes=data["bytes"],
            seconds=data["seconds"],
            p50_ms=data["p50_ms"],
            p99_ms=data["p99_ms"],
            error_samples=tuple(data.get("error_samples", ())),
        )


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def summarize(
    latencies: Sequence[float], nbytes: int, seconds: float, errors: int, samples: Sequence[str]
) -> PhaseResult:
    return PhaseResult(
        ops=len(latencies),
        errors=errors,
        bytes=nbytes,
        seconds=seconds,
        p50_ms=percentile(latencies, 50) * 1000,
        p99_ms=percentile(latencies, 99) * 1000,
        error_samples=tuple(samples),
    )


def median(values: Sequence[float]) -> float:
    clean = [v for v in values if not math.isnan(v)]
    return statistics.median(clean) if clean else math.nan
