"""Where the time goes in a shardgate PUT and GET: py-spy records the gateway and the three nodes
while the load client runs one phase at a time (small, medium, large; PUT then GET); the raw
stacks and phases.json are kept in a directory and summarised by bench.profile_summary.
Standalone: python -m bench.profile [--keep DIR] [--from DIR]"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any

import uvloop

from bench.client import ClientOptions, LoadClient
from bench.payload import Payload
from bench.profile_summary import PHASES_FILE, RATE_HZ, raw_path, render
from bench.targets import ShardgateTarget
from bench.workloads import KiB, MiB, Workload

# Enough objects that each phase lasts several seconds under the profiler.
WORKLOADS = (
    Workload("small", 4 * KiB, 2000, 32),
    Workload("medium", 1 * MiB, 300, 16),
    Workload("large", 64 * MiB, 8, 4),
)
GROUPS = {"gateway": ["gateway"], "nodes (n1 + n2 + n3)": ["node n1", "node n2", "node n3"]}


async def _record(pid: int, out: Path) -> asyncio.subprocess.Process:
    spy = str(Path(sys.executable).parent / "py-spy")
    argv = [spy, "record", "--pid", str(pid), "--format", "raw", "--idle", "--nonblocking"]
    argv += ["--full-filenames", "--rate", str(RATE_HZ), "--output", str(out)]
    return await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
    )


async def _stop(spy: asyncio.subprocess.Process) -> None:
    if spy.returncode is None:
        spy.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
    try:
        await asyncio.wait_for(spy.wait(), 30)
    except TimeoutError:
        spy.kill()
        await spy.wait()


async def record(target: ShardgateTarget, payload: Payload, workdir: Path) -> None:
    """Record every phase into `workdir` (which must exist), then write phases.json there."""
    pids = target.processes()
    client = LoadClient(target, payload, ClientOptions())
    phases: list[dict[str, Any]] = []
    for workload in WORKLOADS:
        prefix = f"profile-{workload.name}"
        for phase in ("put", "get"):
            spies = [
                await _record(pids[name], raw_path(workdir, workload.name, phase, name))
                for members in GROUPS.values()
                for name in members
            ]
            try:
                await asyncio.sleep(1.0)  # let py-spy attach before the load starts
                result = (await client.run(workload, prefix, (phase,)))[phase]
            finally:
                for spy in spies:
                    await _stop(spy)
            phases.append(
                {
                    **vars(workload),
                    "workload": workload.name,
                    "phase": phase,
                    "processes": GROUPS,
                    "seconds": result.seconds + 1.0,
                    "mib_per_s": result.mib_per_s,
                    "ops_per_s": result.ops_per_s,
                    "errors": result.errors,
                }
            )
        await client.run(workload, prefix, ("delete",))
    text = json.dumps(phases, indent=1)
    await asyncio.to_thread((workdir / PHASES_FILE).write_text, text)


async def profile(target: ShardgateTarget, payload: Payload, workdir: Path) -> str:
    """Record, then return the report's markdown section."""
    await record(target, payload, workdir)
    return await asyncio.to_thread(render, workdir)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keep", type=Path, help="keep the raw py-spy stacks in this directory")
    parser.add_argument("--from", dest="source", type=Path, help="only summarise a kept DIR")
    args = parser.parse_args(argv)
    if args.source is not None:
        print(render(args.source))
        return 0
    with (
        tempfile.TemporaryDirectory(prefix="shardgate-bench-prof-") as tmp,
        ShardgateTarget(Path(tmp, "shardgate")) as target,
    ):
        where = args.keep or Path(tmp, "profile")
        where.mkdir(parents=True, exist_ok=True)
        print(uvloop.run(profile(target, Payload(), where)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
