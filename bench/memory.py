"""The memory benchmark: one very large streaming PUT and GET (4 GiB by default), reporting the
peak RSS of every server process. Standalone: python -m bench.memory [--size-gib 4] [--seaweedfs]"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
from pathlib import Path

import uvloop

from bench.client import ClientOptions
from bench.measure import measure, one_line
from bench.payload import Payload
from bench.results import RunRecord
from bench.targets import SeaweedFSTarget, ShardgateTarget, Target
from bench.workloads import GiB, Workload, human_size

# Every GET body is hashed: the point is that a body far larger than memory streams intact.
OPTIONS = ClientOptions(verify=True, phase_deadline_s=1800, request_timeout_s=1800)


async def big_object(target: Target, size: int, payload: Payload) -> RunRecord:
    workload = Workload(human_size(size).replace(" ", ""), size, count=1, concurrency=1)
    return await measure(target, workload, payload, OPTIONS, 1, "memory")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size-gib", type=float, default=4.0)
    parser.add_argument("--seaweedfs", action="store_true", help="run SeaweedFS's filer too")
    args = parser.parse_args(argv)
    size = int(args.size_gib * GiB)
    payload = Payload()
    with (
        tempfile.TemporaryDirectory(prefix="shardgate-bench-mem-") as tmp,
        contextlib.ExitStack() as stack,
    ):
        targets: list[Target] = [stack.enter_context(ShardgateTarget(Path(tmp, "shardgate")))]
        if args.seaweedfs:
            targets.append(stack.enter_context(SeaweedFSTarget(Path(tmp, "seaweedfs"))))
        for target in targets:
            record = uvloop.run(big_object(target, size, payload))
            print(one_line(record))
            for name, peak in record.peaks_mib.items():
                print(f"  peak RSS {name}: {peak:.0f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
