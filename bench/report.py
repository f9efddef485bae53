"""BENCHMARKS.md from a run's results: machine and versions, the command, medians per target
with shardgate/SeaweedFS ratios (and shardgate direct / SeaweedFS volume), the targets checked,
peak RSS per process, the profile, and the hand-written analysis kept in bench/ANALYSIS.md.
Re-render: python -m bench.report JSON OUT"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

from bench.report_base import (
    ANALYSIS,
    DIRECT,
    DIRECT_RATIO,
    PHASE_TITLES,
    TITLES,
    VOLUME,
    Medians,
    _direct,
    _fmt,
    _phases,
    _ratio,
    _table,
    _targets_present,
    _x,
)
from bench.report_checks import target_checks
from bench.results import BenchResults, RunRecord
from bench.stats import median
from bench.workloads import human_size


def _throughput(results: BenchResults, med: Medians) -> list[str]:
    targets = _targets_present(results)
    header = ["workload", "phase"]
    header += [f"{TITLES[t]} MiB/s (ops/s)" for t in targets]
    header += ["shardgate / SeaweedFS", "shardgate / in-memory"]
    header += [DIRECT_RATIO] if _direct(results) else []
    rows = []
    for w in results.workloads:
        for phase in _phases(results):
            row = [w.name, PHASE_TITLES[phase]]
            for t in targets:
                mib, ops = (
                    med.get(t, w.name, phase, "mib_per_s"),
                    med.get(t, w.name, phase, "ops_per_s"),
                )
                row.append(
                    f"{_fmt(mib)} ({_fmt(ops, 0)})" if phase != "delete" else f"({_fmt(ops, 0)})"
                )
            sg = med.get("shardgate", w.name, phase, "ops_per_s")
            row.append(_x(_ratio(sg, med.get("seaweedfs", w.name, phase, "ops_per_s"))))
            row.append(_x(_ratio(sg, med.get("memory", w.name, phase, "ops_per_s"))))
            if _direct(results):
                row.append(
                    _x(
                        _ratio(
                            med.get(DIRECT, w.name, phase, "ops_per_s"),
                            med.get(VOLUME, w.name, phase, "ops_per_s"),
                        )
                    )
                )
            rows.append(row)
    return _table(header, rows)


def _latency(results: BenchResults, med: Medians) -> list[str]:
    targets = _targets_present(results)
    header = ["workload", "phase"]
    header += [f"{TITLES[t]} p50 / p99 ms" for t in targets]
    header += ["p50 shardgate / SeaweedFS", "p99 shardgate / SeaweedFS"]
    header += ["p50 " + DIRECT_RATIO, "p99 " + DIRECT_RATIO] if _direct(results) else []
    rows = []
    for w in results.workloads:
        for phase in _phases(results):
            row = [w.name, PHASE_TITLES[phase]]
            for t in targets:
                p50, p99 = med.get(t, w.name, phase, "p50_ms"), med.get(t, w.name, phase, "p99_ms")
                row.append(f"{_fmt(p50)} / {_fmt(p99)}")
            for attr in ("p50_ms", "p99_ms"):
                sg = med.get("shardgate", w.name, phase, attr)
                row.append(_x(_ratio(sg, med.get("seaweedfs", w.name, phase, attr))))
            if _direct(results):
                for attr in ("p50_ms", "p99_ms"):
                    direct = med.get(DIRECT, w.name, phase, attr)
                    row.append(_x(_ratio(direct, med.get(VOLUME, w.name, phase, attr))))
            rows.append(row)
    return _table(header, rows)


def _cpu_per_op(r: RunRecord, phase: str, which: str) -> float:
    """Server CPU ms per successful operation: all servers, the gateway alone, or the client."""
    ops = r.phases[phase].ops if phase in r.phases else 0
    used = r.cpu_s.get(phase, {})
    if which == "servers":
        seconds = sum(v for k, v in used.items() if k != "client")
    else:
        seconds = used.get(which, math.nan)
    return 1000 * seconds / ops if ops else math.nan


def _cpu(results: BenchResults) -> list[str]:
    targets = _targets_present(results)
    header = ["workload", "phase", *(f"{TITLES[t]} ms/op" for t in targets)]
    header += ["shardgate / SeaweedFS", "of which shardgate gateway", "client ms/op (sg / SW)"]
    header += [DIRECT_RATIO, "of which gateway (direct)"] if _direct(results) else []
    rows = []

    def med(target: str, workload: str, phase: str, which: str) -> float:
        return median(
            [
                _cpu_per_op(r, phase, which)
                for r in results.runs
                if r.target == target and r.workload == workload
            ]
        )

    for w in results.workloads:
        for phase in _phases(results):
            row = [w.name, PHASE_TITLES[phase]]
            row += [_fmt(med(t, w.name, phase, "servers"), 2) for t in targets]
            sg, sw = (
                med("shardgate", w.name, phase, "servers"),
                med("seaweedfs", w.name, phase, "servers"),
            )
            row.append(_x(_ratio(sg, sw)))
            row.append(_fmt(med("shardgate", w.name, phase, "gateway"), 2))
            row.append(
                f"{_fmt(med('shardgate', w.name, phase, 'client'), 2)} / "
                f"{_fmt(med('seaweedfs', w.name, phase, 'client'), 2)}"
            )
            if _direct(results):
                direct = med(DIRECT, w.name, phase, "servers")
                row.append(_x(_ratio(direct, med(VOLUME, w.name, phase, "servers"))))
                row.append(_fmt(med(DIRECT, w.name, phase, "gateway"), 2))
            rows.append(row)
    return _table(header, rows)


def _spread(results: BenchResults, med: Medians) -> list[str]:
    targets = _targets_present(results)
    header = ["workload", "phase", *(f"{TITLES[t]} MiB/s per round" for t in targets)]
    header.append("shardgate / SeaweedFS per round")
    header += [DIRECT_RATIO + " per round"] if _direct(results) else []
    rows = []
    for w in results.workloads:
        for phase in _phases(results, ("put", "get", "get-url")):
            row = [w.name, PHASE_TITLES[phase]]
            for t in targets:
                values = med.spread(t, w.name, phase, "mib_per_s")
                row.append(", ".join(_fmt(v) for v in values))
            pairs = zip(
                med.spread("shardgate", w.name, phase, "mib_per_s"),
                med.spread("seaweedfs", w.name, phase, "mib_per_s"),
                strict=False,
            )
            row.append(", ".join(_x(_ratio(a, b)) for a, b in pairs))
            if _direct(results):
                pairs = zip(
                    med.spread(DIRECT, w.name, phase, "mib_per_s"),
                    med.spread(VOLUME, w.name, phase, "mib_per_s"),
                    strict=False,
                )
                row.append(", ".join(_x(_ratio(a, b)) for a, b in pairs))
            rows.append(row)
    return _table(header, rows)


def _rss(results: BenchResults) -> list[str]:
    rows = []
    for t in _targets_present(results):
        names: list[str] = []
        for r in results.runs:
            if r.target == t:
                names += [n for n in r.peaks_mib if n not in names]
        for name in names:
            row = [TITLES[t], name]
            for w in results.workloads:
                peaks = [
                    r.peaks_mib.get(name, math.nan)
                    for r in results.runs
                    if r.target == t and r.workload == w.name
                ]
                row.append(_fmt(max(peaks, default=math.nan), 0))
            rows.append(row)
    return _table(["target", "process", *(f"{w.name} (MiB)" for w in results.workloads)], rows)


def _memory(results: BenchResults) -> list[str]:
    if not results.memory:
        return ["Not run."]
    lines = []
    for r in results.memory:
        put, get = r.phases.get("put"), r.phases.get("get")
        figures = ", ".join(
            f"{PHASE_TITLES[n]} {_fmt(p.mib_per_s)} MiB/s"
            + (f" ({p.errors} errors)" if p.errors else "")
            for n, p in (("put", put), ("get", get))
            if p is not None
        )
        peaks = ", ".join(f"{name} {_fmt(mib, 0)} MiB" for name, mib in r.peaks_mib.items())
        lines.append(f"- **{TITLES[r.target]}**: {figures}; peak RSS: {peaks}")
    return lines


def _verify(results: BenchResults) -> list[str]:
    if not results.verify:
        return ["Every GET body in this run was hashed and compared (quick mode)."]
    bad = [
        f"{r.target} {r.workload} {phase}: {p.errors} errors {list(p.error_samples)}"
        for r in results.verify
        for phase, p in r.phases.items()
        if p.errors
    ]
    count = sum(
        p.ops for r in results.verify for n, p in r.phases.items() if n in ("get", "get-url")
    )
    if bad:
        return ["Correctness pass found errors:", *(f"- {b}" for b in bad)]
    return [
        f"Correctness pass: {count} GET bodies hashed (md5) and compared with what was sent, "
        "across all targets and workloads; all matched."
    ]


def _direct_setup(results: BenchResults) -> list[str]:
    if not _direct(results):
        return []
    return [
        "- **Direct paths** (no gateway or filer carries the bytes), on the same clusters: "
        "a shardgate direct PUT is timed as a client must do it, presign at the gateway + PUT to "
        "the node it names (which streams the bytes to the other two replicas as they arrive) "
        "+ commit at the gateway (which publishes them, W=2); a direct GET is presign + GET "
        "from the node. A SeaweedFS volume PUT is "
        "`/dir/assign` at the master + PUT of the raw body to the volume server it names "
        "(replication 002: that server writes the two other replicas before answering); a GET "
        "goes to the same volume server with the file id the client kept (no lookup). "
        "*GET, URL in hand* is a second read of the same objects from URLs asked for beforehand "
        "(untimed): the node's or volume server's GET alone. Direct targets have no DELETE phase "
        "(shardgate has no direct delete); their objects are deleted untimed afterwards. Their "
        "processes: the gateway and nodes; the master and volume servers (not the idle filer).",
    ]


def render(results: BenchResults) -> str:
    med = Medians(results.runs)
    loads = results.load_samples or [math.nan]
    errors = sum(p.errors for r in results.runs for p in r.phases.values())
    out = [
        "# Benchmarks: shardgate side by side with SeaweedFS",
        "",
        "Generated by `make bench` (`python -m bench.run`); do not edit by hand: the prose comes "
        "from `bench/ANALYSIS.md`."
        if not results.quick
        else "Smoke run (`make bench-quick`): too short to judge by.",
        "",
        f"- started {results.started}, finished {results.finished}",
        f"- command: `{results.command}`",
        *(f"- {k}: {v}" for k, v in results.machine.items()),
        f"- 1-minute load average at the start of each measurement: min {_fmt(min(loads), 2)}, "
        f"median {_fmt(median(loads), 2)}, max {_fmt(max(loads), 2)} "
        f"(other work shares this machine; hence interleaving and ratios)",
        "",
        "## Setup",
        "",
        *(f"- **{TITLES[t]}**: {results.targets[t]}" for t in _targets_present(results)),
        "- **Durability differs**: every shardgate replica fsyncs the version's file (its "
        "bytes and metadata) and the directory before it acknowledges; a write is answered "
        "once 2 of 3 have (W=2), and the third finishes after the answer. "
        "SeaweedFS does not fsync by default: its writes are acknowledged from the page cache. "
        "shardgate's durability was not weakened to match.",
        "- One load client (asyncio + aiohttp on uvloop) drives every target: PUT, then GET, then "
        "DELETE of `count` objects of `size` bytes with `concurrency` requests in flight; bodies "
        "are views of one pre-generated random buffer (large ones streamed in 256 KiB pieces). "
        "Latency is per request, until the whole answer has been read.",
        *_direct_setup(results),
        "- Workloads: " + "; ".join(w.describe() for w in results.workloads) + ".",
        "- Targets interleaved ("
        + ", ".join(TITLES[t] for t in _targets_present(results))
        + ", then the next workload), "
        f"{results.rounds} round(s); medians over rounds. `sync` runs (untimed) before each "
        "measurement so no target pays for another's dirty pages.",
        f"- {_verify(results)[0]}" if len(_verify(results)) == 1 else "\n".join(_verify(results)),
        f"- Request errors in the timed rounds: {errors}.",
        "",
        "## Throughput (median of rounds)",
        "",
        *_throughput(results, med),
        "",
        "## Latency (median of rounds)",
        "",
        *_latency(results, med),
        "",
        "p99 of the large workload is close to its maximum: there are only "
        f"{next((w.count for w in results.workloads if w.name == 'large'), 0)} objects per round.",
        "",
        "## CPU per operation (median of rounds)",
        "",
        "CPU seconds (user + system, from /proc) the target's server processes used during the "
        "phase, divided by the operations done: steadier than throughput on a shared machine, "
        "and it shows what each design costs. On 2 cores, the client and all servers share the "
        "same CPUs.",
        "",
        *_cpu(results),
        "",
        "<details><summary>Per-round throughput (noise)</summary>",
        "",
        *_spread(results, med),
        "",
        "</details>",
        "",
        "## Targets from the issue",
        "",
        *target_checks(results, med),
        "",
        "## Peak RSS per process (max over rounds)",
        "",
        *_rss(results),
        "",
        f"## {human_size(results.memory_size)} streaming PUT and GET (memory benchmark)",
        "",
        *_memory(results),
        "",
    ]
    if ANALYSIS.exists() and not results.quick:
        out += [ANALYSIS.read_text().strip(), ""]
    if results.profile_md:
        out += ["## Appendix: profile details", "", results.profile_md.strip(), ""]
    return "\n".join(out)


def write(results: BenchResults, out: Path, raw: Path | None = None) -> None:
    out.write_text(render(results))
    if raw is not None:
        raw.write_text(json.dumps(results.to_json(), indent=1) + "\n")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m bench.report RESULTS.json OUT.md", file=sys.stderr)
        return 2
    results = BenchResults.from_json(json.loads(Path(args[0]).read_text()))
    Path(args[1]).write_text(render(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
