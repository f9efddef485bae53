"""Uploads are answered once W=2 replicas acknowledge (DESIGN.md's write path), against real
processes: a node SIGSTOPped while it takes a write does not hold the answer back, gets its copy
when it runs again, and, SIGKILLed instead, is queued for repair and repaired once back."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import os
import shutil
import signal
import time
from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest
from clusterkit import Api, cluster_ring, labelled_metric, replica_versions, wait_for_metric
from faultkit import FaultReport

from ring import object_hash, partition_of
from shardgate.cli.dev import DevCluster

VICTIM = "n3"
LATE = "shardgate_gateway_late_replica_writes"
LATE_FAILURES = "shardgate_gateway_late_replica_failures_total"
FAILOVERS = "shardgate_gateway_read_failovers_total"


@pytest.fixture
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevCluster]:
    data = tmp_path_factory.mktemp("slow")
    cluster = DevCluster(data, port=0)
    cluster.env["SHARDGATE_GATEWAY_REPAIR_INTERVAL"] = "0.5"
    cluster.env["SHARDGATE_GATEWAY_LATE_REPLICA_WRITES"] = "64"  # the default the suite turns off
    cluster.start()
    yield cluster
    with_victim_running(cluster)
    cluster.stop()
    shutil.rmtree(data, ignore_errors=True)


@pytest.fixture
async def api(cluster: DevCluster) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession() as session:
        api = Api(session, cluster.url, cluster.api_key)
        await api.create_bucket("slow")
        yield api


def key_read_first_from(cluster: DevCluster, node_id: str) -> str:
    """A key whose partition lists `node_id` first, so that a read would ask it first."""
    ring = cluster_ring(cluster)
    for index in itertools.count():
        key = f"first/{index}.bin"
        partition = partition_of(object_hash("slow", key), ring.partition_power)
        if ring.primaries(partition)[0].id == node_id:
            return key
    raise AssertionError("unreachable")


def with_victim_running(cluster: DevCluster) -> None:
    if cluster.nodes[VICTIM].alive():
        os.kill(cluster.nodes[VICTIM].process.pid, signal.SIGCONT)


async def put_while_stopped(
    api: Api, cluster: DevCluster, body: bytes, key: str = "photo.bin"
) -> dict[str, object]:
    """SIGSTOP the victim and PUT at once, before health probes can call it down: its socket
    takes the bytes, but it cannot acknowledge them."""
    os.kill(cluster.nodes[VICTIM].process.pid, signal.SIGSTOP)
    started = time.monotonic()
    status, stored = await api.put("slow", key, body)
    assert status == 201, stored
    # The stopped node's write is still out there: the answer did not wait for it.
    assert await labelled_metric(api, LATE) == 1
    assert VICTIM in stored["replicas"]  # type: ignore[operator]
    assert time.monotonic() - started < 20, "answered only when the stopped node's write timed out"
    return stored


async def held_everywhere(
    api: Api, cluster: DevCluster, stored: dict[str, object], body: bytes
) -> None:
    """Every node comes to hold the version (the victim within 30 s), and it reads back whole."""
    version, etag = str(stored["version"]), hashlib.md5(body, usedforsecurity=False).hexdigest()
    deadline = time.monotonic() + 30
    while True:
        ring = cluster_ring(cluster)
        found = await replica_versions(
            api.session, ring, cluster.cluster_secret, "slow", "photo.bin"
        )
        if found.get(VICTIM, ("",))[0] == version or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    assert found == dict.fromkeys(cluster.node_ids, (version, etag))
    status, sha256, size = await api.get_sha256("slow", "photo.bin")
    assert (status, sha256, size) == (200, hashlib.sha256(body).hexdigest(), len(body))


async def test_a_stopped_node_does_not_hold_the_answer_and_gets_its_copy_after(
    cluster: DevCluster, api: Api, fault_report: FaultReport
) -> None:
    body = os.urandom(200 * 1024)
    stored = await put_while_stopped(api, cluster, body)
    fault_report.fault(f"SIGSTOP {VICTIM} while it took a write, then SIGCONT")
    os.kill(cluster.nodes[VICTIM].process.pid, signal.SIGCONT)
    await wait_for_metric(api, LATE, 0, timeout=30)
    await held_everywhere(api, cluster, stored, body)
    assert await labelled_metric(api, LATE_FAILURES) == 0
    fault_report.objects(checked=1, lost=0)


async def test_a_node_killed_before_it_acknowledged_is_repaired_once_back(
    cluster: DevCluster, api: Api, fault_report: FaultReport
) -> None:
    body = os.urandom(300 * 1024)
    stored = await put_while_stopped(api, cluster, body)
    cluster.kill_node(VICTIM)  # SIGKILL: the stopped node never commits
    fault_report.fault(f"SIGSTOP then SIGKILL {VICTIM} before it acknowledged a write")
    await wait_for_metric(api, LATE_FAILURES, 1, timeout=30)
    await wait_for_metric(api, LATE, 0)  # the repair is queued as it ends
    cluster.start_node(VICTIM)
    await held_everywhere(api, cluster, stored, body)
    fault_report.objects(checked=1, lost=0)


async def test_a_read_right_after_the_answer_does_not_wait_for_the_late_replica(
    cluster: DevCluster, api: Api, fault_report: FaultReport
) -> None:
    """The stopped node is the partition's first, which a read asks first: while its write is
    still out, the gateway asks the replicas that acknowledged instead. Asked first, the
    stopped node would hold the read for node_io_timeout, then fail over."""
    key = key_read_first_from(cluster, VICTIM)
    body = os.urandom(100 * 1024)
    failovers = await labelled_metric(api, FAILOVERS)
    await put_while_stopped(api, cluster, body, key)
    fault_report.fault(f"SIGSTOP {VICTIM}, the first replica a read asks, while it took a write")
    try:
        status, sha256, size = await api.get_sha256("slow", key)
        assert (status, sha256, size) == (200, hashlib.sha256(body).hexdigest(), len(body))
        assert await labelled_metric(api, LATE) == 1  # read while the late write was still out
        # Still believed up: its place in the order came from its write alone.
        assert await labelled_metric(api, "shardgate_gateway_node_up", node=VICTIM) == 1
        assert await labelled_metric(api, FAILOVERS) == failovers
    finally:
        os.kill(cluster.nodes[VICTIM].process.pid, signal.SIGCONT)
    await wait_for_metric(api, LATE, 0, timeout=30)
    fault_report.objects(checked=1, lost=0)
