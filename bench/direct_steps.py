"""Where a direct upload's time goes, one upload at a time: presign at the gateway, the PUT to
the node, the commit, each timed apart (medians over `count` uploads) on a fresh shardgate
cluster. Standalone: python -m bench.direct_steps [--count 6] [--size-mib 64]"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import aiohttp
import uvloop

from bench.client import BenchError
from bench.payload import Payload
from bench.targets import ShardgateTarget
from bench.targets.direct import ShardgateDirectTarget
from bench.workloads import MiB


async def steps(direct: ShardgateDirectTarget, count: int, size: int) -> dict[str, list[float]]:
    """Seconds each step took, per upload."""
    payload = Payload()
    took: dict[str, list[float]] = {"presign": [], "put": [], "commit": []}
    async with aiohttp.ClientSession() as session:
        for index in range(count):
            key = f"steps/{index}"
            started = time.perf_counter()
            location = await direct.put_location(session, key)
            signed = time.perf_counter()
            async with session.put(
                location.url, data=payload.body(index, size), headers=location.headers
            ) as response:
                answer = await response.read()
                if response.status != 201:
                    raise BenchError(f"direct PUT answered {response.status}: {answer[:200]!r}")
            sent = time.perf_counter()
            await direct.put_done(session, key, location, answer, size)
            committed = time.perf_counter()
            took["presign"].append(signed - started)
            took["put"].append(sent - signed)
            took["commit"].append(committed - sent)
    return took


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=6)
    parser.add_argument("--size-mib", type=float, default=64.0)
    args = parser.parse_args(argv)
    size = int(args.size_mib * MiB)
    with (
        tempfile.TemporaryDirectory(prefix="shardgate-bench-steps-") as tmp,
        ShardgateTarget(Path(tmp, "shardgate")) as cluster,
    ):
        direct = ShardgateDirectTarget(cluster)
        direct.start()
        took = uvloop.run(steps(direct, args.count, size))
    medians = {step: statistics.median(seconds) * 1000 for step, seconds in took.items()}
    print(
        f"{args.count} direct uploads of {args.size_mib:g} MiB, one at a time (median ms): "
        + ", ".join(f"{step} {ms:.0f}" for step, ms in medians.items())
        + f"; total {sum(medians.values()):.0f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
