"""Must-show 2: a 1 GiB upload and a 1 GiB download through the gateway at once grow its RSS by
less than 64 MiB, and the gateway opens no temp file while doing it."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import aiohttp
import pytest
from clusterkit import Api, Body, Sampler, rss_bytes

from shardgate.cli.dev import DevCluster

GiB = 1024**3
RSS_GROWTH_LIMIT = 64 * 1024**2


def _open_files(pid: int) -> set[str]:
    """Files the process itself holds open right now. Descriptors 0-2 are inherited stdio
    (under pytest's capture, stderr is an unlinked file in /tmp), not the gateway's doing."""
    found = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        if int(fd.name) <= 2:
            continue
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("/"):
            found.add(target)
    return found


@pytest.mark.slow
async def test_gigabyte_up_and_down_in_bounded_gateway_memory(
    cluster: DevCluster, session: aiohttp.ClientSession
) -> None:
    assert cluster.gateway is not None
    pid = cluster.gateway.process.pid
    api = Api(session, cluster.url, cluster.api_key)
    await api.create_bucket("big")
    download = Body(GiB, seed=1)
    started = time.perf_counter()
    status, _ = await api.put("big", "down.bin", download.chunks(), **{"Content-Length": str(GiB)})
    put_alone = time.perf_counter() - started
    assert status == 201

    upload = Body(GiB, seed=2)
    baseline = rss_bytes(pid)
    with (
        Sampler(lambda: rss_bytes(pid)) as rss,
        Sampler(lambda: _open_files(pid), interval=0.2) as files,
    ):
        started = time.perf_counter()
        put, got = await asyncio.gather(
            api.put("big", "up.bin", upload.chunks(), **{"Content-Length": str(GiB)}),
            api.get_sha256("big", "down.bin"),
        )
        elapsed = time.perf_counter() - started
    assert put[0] == 201 and put[1]["size"] == GiB
    assert got == (200, download.sha256(), GiB)
    started = time.perf_counter()
    status, digest, size = await api.get_sha256("big", "up.bin")
    get_alone = time.perf_counter() - started
    assert (status, digest, size) == (200, upload.sha256(), GiB)

    peak = max(rss.samples)  # type: ignore[type-var]
    growth = peak - baseline  # type: ignore[operator]
    print(
        f"\n1 GiB PUT alone {GiB / put_alone / 2**20:.0f} MiB/s (x3 replicas, fsync); "
        f"GET alone {GiB / get_alone / 2**20:.0f} MiB/s (client hashes too)"
        f"\n1 GiB up + 1 GiB down concurrently in {elapsed:.1f}s "
        f"({2 * GiB / elapsed / 2**20:.0f} MiB/s combined); "
        f"gateway RSS {baseline / 2**20:.0f} MiB -> "
        f"peak {peak / 2**20:.0f} MiB (+{growth / 2**20:.1f} MiB) over {len(rss.samples)} samples"  # type: ignore[operator]
    )
    assert growth < RSS_GROWTH_LIMIT

    held = set().union(*files.samples)  # type: ignore[arg-type]
    catalog = str(cluster.data / "gateway" / "catalog.sqlite3")
    assert {
        path for path in held if not path.startswith(catalog) and not path.startswith("/dev/")
    } == set()
    assert sorted(p.name for p in (cluster.data / "gateway").iterdir()) == [
        "catalog.sqlite3",
        "catalog.sqlite3-shm",
        "catalog.sqlite3-wal",
    ]
