"""The report's verdict: each target the issue sets, with the measured median against it."""

from __future__ import annotations

import math

from bench.report_base import (
    DIRECT,
    GATEWAY_RSS_LIMIT_MIB,
    LARGE_PUT_TARGET,
    P99_LIMIT,
    PHASE_TITLES,
    TPUT_TARGET,
    VOLUME,
    Medians,
    _direct,
    _fmt,
    _ratio,
    _table,
    _x,
)
from bench.results import BenchResults
from bench.workloads import human_size


def target_checks(results: BenchResults, med: Medians) -> list[str]:
    rows = []

    def verdict(ok: bool) -> str:
        return "met" if ok else "**not met**"

    for w in results.workloads:
        for phase in ("put", "get"):
            tput = _ratio(
                med.get("shardgate", w.name, phase, "ops_per_s"),
                med.get("seaweedfs", w.name, phase, "ops_per_s"),
            )
            need = LARGE_PUT_TARGET if (w.name == "large" and phase == "put") else TPUT_TARGET
            rows.append(
                [
                    f"{w.name} {PHASE_TITLES[phase]} throughput",
                    f">= {need:.1f}x",
                    _x(tput),
                    verdict(tput >= need),
                ]
            )
            p99 = _ratio(
                med.get("shardgate", w.name, phase, "p99_ms"),
                med.get("seaweedfs", w.name, phase, "p99_ms"),
            )
            rows.append(
                [
                    f"{w.name} {PHASE_TITLES[phase]} p99 latency",
                    f"<= {P99_LIMIT:.1f}x",
                    _x(p99),
                    verdict(p99 <= P99_LIMIT),
                ]
            )
    if _direct(results):
        # The issue: the direct path is at least as fast as SeaweedFS's volume path for large
        # objects (PUT = presign + PUT + commit; GET = presign + GET).
        for w in results.workloads:
            if w.name != "large":
                continue
            for phase in ("put", "get"):
                tput = _ratio(
                    med.get(DIRECT, w.name, phase, "ops_per_s"),
                    med.get(VOLUME, w.name, phase, "ops_per_s"),
                )
                rows.append(
                    [
                        f"direct {w.name} {PHASE_TITLES[phase]} throughput (vs SeaweedFS volume)",
                        f">= {TPUT_TARGET:.1f}x",
                        _x(tput),
                        verdict(tput >= TPUT_TARGET),
                    ]
                )
    large = [r for r in results.runs if r.target == "shardgate" and r.workload == "large"]
    if large:
        peak = max(r.peaks_mib.get("gateway", math.nan) for r in large)
        rows.append(
            [
                "gateway peak RSS, large workload",
                f"< {GATEWAY_RSS_LIMIT_MIB:.0f} MiB",
                f"{_fmt(peak, 0)} MiB",
                verdict(peak < GATEWAY_RSS_LIMIT_MIB),
            ]
        )
    for r in results.memory:
        if r.target == "shardgate":
            peak = r.peaks_mib.get("gateway", math.nan)
            rows.append(
                [
                    f"gateway peak RSS, {human_size(results.memory_size)} run",
                    f"< {GATEWAY_RSS_LIMIT_MIB:.0f} MiB",
                    f"{_fmt(peak, 0)} MiB",
                    verdict(peak < GATEWAY_RSS_LIMIT_MIB),
                ]
            )
    return _table(["target", "required", "measured (median)", "verdict"], rows)
