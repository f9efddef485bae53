"""One measurement: a target runs a workload once under the load client (its phases: PUT, GET,
DELETE; a direct target's differ) while /proc is read for its server processes' peak RSS and CPU
seconds per phase, after flushing the dirty pages the previous measurement left."""

from __future__ import annotations

import asyncio
import os

from bench import machine
from bench.client import UNTIMED, ClientOptions, LoadClient
from bench.payload import Payload
from bench.procfs import RssWatch, cpu_snapshot
from bench.results import RunRecord
from bench.targets import Target
from bench.workloads import Workload

CLIENT = "client"


def _own_cpu() -> float:
    times = os.times()
    return times.user + times.system


async def measure(
    target: Target,
    workload: Workload,
    payload: Payload,
    options: ClientOptions,
    round_no: int,
    prefix: str,
) -> RunRecord:
    # A store that does not fsync leaves its writes dirty in the page cache; flushing them here
    # (untimed) keeps that writeback out of the next target's figures.
    await asyncio.get_running_loop().run_in_executor(None, os.sync)
    load1 = machine.load1()
    pids = target.processes()
    client = LoadClient(target, payload, options)
    phases = {}
    cpu: dict[str, dict[str, float]] = {}
    with RssWatch(pids) as watch:
        for phase in target.phases:
            before, own = cpu_snapshot(pids), _own_cpu()
            phases[phase] = (await client.run(workload, prefix, (phase,)))[phase]
            after = cpu_snapshot(pids)
            cpu[phase] = {name: after[name] - before[name] for name in pids}
            cpu[phase][CLIENT] = _own_cpu() - own
    return RunRecord(target.name, workload.name, round_no, load1, phases, watch.peaks_mib, cpu)


def one_line(record: RunRecord) -> str:
    parts = [f"{record.target:<16} {record.workload:<6} r{record.round} load {record.load1:4.2f}"]
    for name, phase in record.phases.items():
        if name in UNTIMED:
            if phase.errors:
                parts.append(f"{name} (untimed) ERR {phase.errors}")
            continue
        servers = sum(v for k, v in record.cpu_s.get(name, {}).items() if k != CLIENT)
        per_op = 1000 * servers / phase.ops if phase.ops else 0.0
        parts.append(
            f"{name} {phase.ops_per_s:7.1f} op/s {phase.mib_per_s:7.1f} MiB/s "
            f"p99 {phase.p99_ms:7.1f} ms cpu {per_op:6.2f} ms/op"
            + (f" ERR {phase.errors}" if phase.errors else "")
        )
    return " | ".join(parts)
