"""Issue 9's must-show 5 against real processes: one node's data directory is a 24 MiB tmpfs.
When it fills, the node answers 507 and keeps nothing partial; writes through the gateway go on
with the other replicas; when the filesystem grows again the node gets every write it missed."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from clusterkit import Api, Body, cluster_ring, replica_versions
from faultkit import FaultReport

from ring import object_hash
from shardgate.cli.dev import DevCluster
from shardgate.internal_api import object_path, put_headers
from shardgate.signing import sign_request
from storage_node.version_file import NoTrailer, read_meta_at

FULL = "n3"
MiB = 1024 * 1024


def mount_tmpfs(path: Path, size: str) -> None:
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small filesystem here: {done.stderr.strip()}")


@contextlib.contextmanager
def small_disks(data: Path, sizes: dict[str, str], **env: str) -> Iterator[DevCluster]:
    """A dev cluster whose named nodes keep their data on tmpfs mounts of those sizes."""
    cluster = DevCluster(data, port=0)
    cluster.env.update(env)
    try:
        for node, size in sizes.items():
            mount_tmpfs(data / node, size)
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
        for node in sizes:
            subprocess.run(["umount", str(data / node)], check=False)
        shutil.rmtree(data, ignore_errors=True)


@pytest.fixture
def full_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevCluster]:
    data = tmp_path_factory.mktemp("full")
    with small_disks(data, {FULL: "24m"}, SHARDGATE_GATEWAY_REPAIR_INTERVAL="1") as cluster:
        yield cluster


def leftovers(cluster: DevCluster) -> list[str]:
    """Temp files, and data files without their whole trailer, on the full node."""
    root = cluster.data / FULL
    found = [str(p) for p in (root / "tmp").iterdir()]
    for data in (root / "objects").rglob("*.data"):
        try:
            read_meta_at(data)
        except NoTrailer:
            found.append(str(data))
    return found


async def nothing_partial(cluster: DevCluster) -> list[str]:
    """Leftovers that stay: repairs keep trying the full node every second, and each attempt
    holds a temp file for a moment before it fails and removes it."""
    deadline = time.monotonic() + 10
    while (found := leftovers(cluster)) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    return found


@pytest.mark.slow
async def test_a_full_node_answers_507_keeps_nothing_partial_and_recovers(
    full_cluster: DevCluster, session: aiohttp.ClientSession, fault_report: FaultReport
) -> None:
    cluster = full_cluster
    api = Api(session, cluster.url, cluster.api_key)
    await api.create_bucket("full")
    fault_report.fault(f"{FULL}'s filesystem filled (24 MiB tmpfs)")
    bodies = {f"obj/{i}": Body(MiB + i, seed=i) for i in range(40)}
    for key, body in bodies.items():
        status, stored = await api.put("full", key, body.bytes())
        assert status == 201, stored  # the other two replicas take every write
    ring = cluster_ring(cluster)
    held = {
        key: await replica_versions(session, ring, cluster.cluster_secret, "full", key)
        for key in bodies
    }
    missed = [key for key, holders in held.items() if FULL not in holders]
    assert len(missed) >= 10, "the node never filled up"
    assert await nothing_partial(cluster) == []

    # Straight to the node: 507 with a JSON error, and again nothing left behind.
    obj_hash = object_hash("full", "direct")
    path = object_path(ring.partition("full", "direct"), obj_hash)
    headers = put_headers("full", "direct", "0" * 19 + "1", "application/octet-stream", {}, 8 * MiB)
    headers.update(sign_request(cluster.cluster_secret.encode(), "PUT", path))
    async with session.put(
        cluster.nodes[FULL].url + path, data=b"z" * 8 * MiB, headers=headers
    ) as resp:
        assert resp.status == 507
        assert (await resp.json())["error"]["code"] == "InsufficientStorage"
    assert await nothing_partial(cluster) == []

    # Space returns: the repair queue fills the node in with everything it missed.
    subprocess.run(["mount", "-o", "remount,size=256m", str(cluster.data / FULL)], check=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        lacking = [
            key
            for key in missed
            if FULL
            not in await replica_versions(session, ring, cluster.cluster_secret, "full", key)
        ]
        if not lacking:
            break
        await asyncio.sleep(0.5)
    assert lacking == []
    for key, body in bodies.items():
        holders = await replica_versions(session, ring, cluster.cluster_secret, "full", key)
        assert len(holders) == 3 and len({v for v in holders.values()}) == 1, key
        assert await api.get_sha256("full", key) == (200, body.sha256(), body.size)
    fault_report.objects(len(bodies), 0)


@pytest.fixture
def two_full_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevCluster]:
    data = tmp_path_factory.mktemp("twofull")
    with small_disks(data, {"n2": "8m", "n3": "8m"}) as cluster:
        yield cluster


@pytest.mark.slow
async def test_a_write_two_full_nodes_cannot_take_is_a_507_naming_them(
    two_full_cluster: DevCluster, session: aiohttp.ClientSession, fault_report: FaultReport
) -> None:
    # A 503 says retry in a second; a full disk needs an operator: 507, and which disks.
    cluster = two_full_cluster
    api = Api(session, cluster.url, cluster.api_key)
    await api.create_bucket("full")
    fault_report.fault("n2's and n3's filesystems too small for the write (8 MiB tmpfs each)")
    body = Body(24 * MiB, seed=7)
    status, answer = await api.put("full", "big", body.bytes())
    assert status == 507, answer
    assert answer["error"]["code"] == "InsufficientStorage"
    assert "n2" in answer["error"]["message"] and "n3" in answer["error"]["message"]
    assert (await api.get_sha256("full", "big"))[0] == 404
    for node in ("n2", "n3"):
        assert list((cluster.data / node / "tmp").iterdir()) == [], f"{node} kept a partial file"
    fault_report.objects(1, 0)
