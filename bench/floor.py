"""`python -m bench.floor`: shardgate, the bare floor of its shape in Python
(bench.floor_servers) and SeaweedFS's filer, interleaved on the benchmark's workloads for
several rounds; prints each run, then the medians, ratios to SeaweedFS and server CPU per op.
It answers how much of shardgate's gap to SeaweedFS its features cost and how much any Python
gateway with three fsyncing replicas pays. Every process it starts is stopped on exit."""

from __future__ import annotations

import argparse
import contextlib
import json
import tempfile
from pathlib import Path

import uvloop

from bench.client import ClientOptions
from bench.measure import CLIENT, measure, one_line
from bench.payload import Payload
from bench.report_base import Medians, _fmt, _ratio, _table, _x
from bench.results import RunRecord
from bench.run import log
from bench.stats import median
from bench.targets import SeaweedFSTarget, ShardgateTarget, Target
from bench.targets.floor import FloorTarget
from bench.workloads import FULL

TARGETS = ("shardgate", "floor", "seaweedfs")


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.floor", description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of each count")
    parser.add_argument(
        "--workloads",
        default=",".join(w.name for w in FULL),
        help="comma-separated workloads to run (default: all of them)",
    )
    parser.add_argument("--raw", type=Path, help="write every run's record here (JSON)")
    return parser.parse_args(argv)


def cpu_per_op(runs: list[RunRecord], target: str, workload: str, phase: str) -> float:
    """Median over rounds of the servers' CPU milliseconds per operation."""
    values = [
        1000 * sum(s for name, s in r.cpu_s[phase].items() if name != CLIENT) / r.phases[phase].ops
        for r in runs
        if (r.target, r.workload) == (target, workload) and r.phases[phase].ops
    ]
    return median(values)


def summary(runs: list[RunRecord], workloads: list[str]) -> str:
    medians = Medians(runs)
    rows = []
    for workload in workloads:
        for phase in ("put", "get"):
            ops = {t: medians.get(t, workload, phase, "ops_per_s") for t in TARGETS}
            cpu = {t: cpu_per_op(runs, t, workload, phase) for t in TARGETS}
            rows.append(
                [
                    f"{workload} {phase.upper()}",
                    *(_fmt(ops[t]) for t in TARGETS),
                    _x(_ratio(ops["shardgate"], ops["seaweedfs"])),
                    _x(_ratio(ops["floor"], ops["seaweedfs"])),
                    " / ".join(_fmt(cpu[t], 2) for t in TARGETS),
                ]
            )
    header = [
        "figure",
        "shardgate op/s",
        "floor op/s",
        "SeaweedFS op/s",
        "shardgate / SeaweedFS",
        "floor / SeaweedFS",
        "server CPU ms/op (shardgate / floor / SeaweedFS)",
    ]
    return "\n".join(_table(header, rows))


async def _rounds(
    targets: list[Target], rounds: int, scale: float, names: list[str]
) -> list[RunRecord]:
    payload, runs = Payload(), []
    workloads = [w for w in FULL if w.name in names]
    for round_no in range(1, rounds + 1):
        for workload in workloads:
            scaled = type(workload)(
                workload.name,
                workload.size,
                max(int(workload.count * scale), workload.concurrency),
                workload.concurrency,
            )
            for target in targets:
                prefix = f"f{round_no}-{workload.name}"
                record = await measure(target, scaled, payload, ClientOptions(), round_no, prefix)
                runs.append(record)
                log(one_line(record))
    return runs


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    names = args.workloads.split(",")
    unknown = set(names) - {w.name for w in FULL}
    if unknown:
        raise SystemExit(f"unknown workloads: {', '.join(sorted(unknown))}")
    with tempfile.TemporaryDirectory(prefix="shardgate-floor-") as tmp:
        targets: list[Target] = [
            ShardgateTarget(Path(tmp, "shardgate")),
            FloorTarget(Path(tmp, "floor")),
            SeaweedFSTarget(Path(tmp, "seaweedfs")),
        ]
        with contextlib.ExitStack() as stack:
            for target in targets:
                log(f"starting {target.label}")
                stack.enter_context(target)
            runs = uvloop.run(_rounds(targets, args.rounds, args.scale, names))
    if args.raw is not None:
        args.raw.write_text(json.dumps([run.to_json() for run in runs], indent=1) + "\n")
    print(summary(runs, names))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
