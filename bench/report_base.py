"""Shared pieces of the benchmark report: target names and titles, number formatting, medians
across rounds, and Markdown tables."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from pathlib import Path

from bench.results import BenchResults, RunRecord
from bench.stats import median

ANALYSIS = Path(__file__).with_name("ANALYSIS.md")
DIRECT, VOLUME = "shardgate-direct", "seaweedfs-volume"
ORDER = ("shardgate", "seaweedfs", "memory", DIRECT, VOLUME)
TITLES = {
    "shardgate": "shardgate",
    "seaweedfs": "SeaweedFS",
    "memory": "in-memory",
    DIRECT: "shardgate direct",
    VOLUME: "SeaweedFS volume",
}
DIRECT_RATIO = "direct / SeaweedFS volume"
# `get-url`: GET from a URL the client already holds (direct targets only; asked for untimed).
PHASE_TITLES = {"put": "PUT", "get": "GET", "get-url": "GET, URL in hand", "delete": "DELETE"}
GATEWAY_RSS_LIMIT_MIB = 150.0
TPUT_TARGET = 1.0
LARGE_PUT_TARGET = 2.0
P99_LIMIT = 1.5


def _fmt(value: float, digits: int = 1) -> str:
    return "n/a" if math.isnan(value) else f"{value:,.{digits}f}"


def _x(ratio: float) -> str:
    return "n/a" if math.isnan(ratio) else f"{ratio:,.2f}x"


def _ratio(a: float, b: float) -> float:
    return a / b if b and not math.isnan(a) and not math.isnan(b) else math.nan


class Medians:
    """Median over rounds of each figure, per (target, workload, phase)."""

    def __init__(self, runs: Iterable[RunRecord]) -> None:
        self._runs = list(runs)

    def _values(self, target: str, workload: str, phase: str, attr: str) -> list[float]:
        return [
            float(getattr(r.phases[phase], attr))
            for r in self._runs
            if r.target == target and r.workload == workload and phase in r.phases
        ]

    def get(self, target: str, workload: str, phase: str, attr: str) -> float:
        return median(self._values(target, workload, phase, attr))

    def spread(self, target: str, workload: str, phase: str, attr: str) -> list[float]:
        return self._values(target, workload, phase, attr)

    def errors(self, target: str, workload: str, phase: str) -> int:
        return int(sum(self._values(target, workload, phase, "errors")))


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _targets_present(results: BenchResults) -> list[str]:
    return [t for t in ORDER if t in results.targets]


def _direct(results: BenchResults) -> bool:
    """Whether the run had both direct paths (older recorded runs did not)."""
    return DIRECT in results.targets and VOLUME in results.targets


def _phases(results: BenchResults, phases: Iterable[str] = PHASE_TITLES) -> list[str]:
    """The phases some target ran (`get-url` only when there were direct targets)."""
    ran = {name for r in results.runs for name in r.phases}
    return [phase for phase in phases if phase in ran]
