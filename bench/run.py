"""`make bench` / `make bench-quick`: start the targets (shardgate, SeaweedFS's filer, the
in-memory server, and the direct paths of shardgate and SeaweedFS on the same clusters), run the
workloads interleaved for several rounds, the big-object memory run and the profile, then write
BENCHMARKS.md.

Every process started here is stopped on success, failure, Ctrl-C and SIGTERM.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import signal
import sys
import tempfile
import time
from pathlib import Path
from types import FrameType

import uvloop

from bench import machine, memory, profile, report
from bench.client import ClientOptions
from bench.measure import measure, one_line
from bench.payload import Payload
from bench.results import BenchResults
from bench.targets import (
    InMemoryTarget,
    SeaweedFSTarget,
    SeaweedFSVolumeTarget,
    ShardgateDirectTarget,
    ShardgateTarget,
    Target,
)
from bench.workloads import FULL, QUICK, VERIFY, GiB, MiB

REPO = Path(__file__).resolve().parents[1]


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="one-minute smoke run")
    parser.add_argument(
        "--rounds", type=int, help="rounds of interleaved runs (default 3; quick 1)"
    )
    parser.add_argument("--out", type=Path, help="write the report here (quick: stdout only)")
    parser.add_argument("--raw", type=Path, help="write the raw results JSON here")
    parser.add_argument("--memory-gib", type=float, help="memory run size (default 4; quick 0.25)")
    parser.add_argument("--no-profile", action="store_true", help="skip the py-spy profile")
    parser.add_argument("--profile-dir", type=Path, help="keep py-spy's raw stacks here")
    parser.add_argument("--workdir", type=Path, help="where the targets keep data (default: tmp)")
    return parser.parse_args(argv)


def _stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


async def _rounds(
    targets: list[Target], results: BenchResults, payload: Payload, quick: bool
) -> None:
    if not quick:
        log("correctness pass (untimed): every GET body hashed")
        for workload in VERIFY:
            for target in targets:
                record = await measure(
                    target, workload, payload, ClientOptions(verify=True), 0, "verify"
                )
                results.verify.append(record)
                log(one_line(record))
    options = ClientOptions(verify=quick)
    for round_no in range(1, results.rounds + 1):
        for workload in results.workloads:
            for target in targets:
                prefix = f"r{round_no}-{workload.name}"
                record = await measure(target, workload, payload, options, round_no, prefix)
                results.runs.append(record)
                results.load_samples.append(record.load1)
                log(one_line(record))


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(argv)
    except KeyboardInterrupt:
        log("interrupted; every server this run started has been stopped")
        return 130


def _main(argv: list[str] | None) -> int:
    args = _parse(argv)
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    quick = bool(args.quick)
    memory_size = int((args.memory_gib or (0.25 if quick else 4.0)) * GiB)
    results = BenchResults(
        started=datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        command="python -m bench.run " + " ".join(sys.argv[1:] if argv is None else argv),
        quick=quick,
        rounds=args.rounds or (1 if quick else 3),
        machine=machine.describe(),
        targets={},
        workloads=list(QUICK if quick else FULL),
        memory_size=memory_size,
    )
    payload = Payload()
    with (
        tempfile.TemporaryDirectory(prefix="shardgate-bench-", dir=args.workdir) as tmp,
        contextlib.ExitStack() as stack,
    ):
        shardgate = ShardgateTarget(Path(tmp, "shardgate"))
        seaweedfs = SeaweedFSTarget(Path(tmp, "seaweedfs"))
        # The direct paths run on the clusters above (entered after them; they start nothing).
        targets: list[Target] = [
            shardgate,
            seaweedfs,
            InMemoryTarget(Path(tmp, "memory")),
            ShardgateDirectTarget(shardgate),
            SeaweedFSVolumeTarget(seaweedfs),
        ]
        for target in targets:
            log(f"starting {target.label}")
            stack.enter_context(target)
            results.targets[target.name] = target.describe()
        log(f"machine: {results.machine['cpus']} CPUs, load {machine.load1():.2f}")
        paged_out = machine.damon_paged_out()
        uvloop.run(_rounds(targets, results, payload, quick))
        paged_out_after = machine.damon_paged_out()
        if paged_out is not None and paged_out_after is not None:
            during = (paged_out_after - paged_out) / 2**30
            results.machine["paged out by DAMON during the rounds"] = f"{during:.1f} GiB"
        for target in (shardgate, seaweedfs):
            log(f"memory run: one {memory_size / MiB:.0f} MiB object through {target.name}")
            record = uvloop.run(memory.big_object(target, memory_size, payload))
            results.memory.append(record)
            log(one_line(record) + f" | peaks {record.peaks_mib}")
        if not quick and not args.no_profile:
            log("profiling shardgate with py-spy")
            where = args.profile_dir or Path(tmp, "profile")
            where.mkdir(parents=True, exist_ok=True)
            try:
                results.profile_md = uvloop.run(profile.profile(shardgate, payload, where))
            except Exception as exc:  # the measurements above must still be written
                log(f"the profile failed: {exc!r}")
                results.profile_md = f"The profile failed this run: `{exc!r}`."
        log("stopping targets")
    results.finished = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    if args.out is not None:
        report.write(results, args.out, args.raw)
        log(f"wrote {args.out}")
    else:
        print(report.render(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
