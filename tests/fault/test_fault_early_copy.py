"""A peer SIGKILLed while it receives an early copy of a direct upload: the upload still lands
on its node, the commit publishes it on the two survivors (W=2) and records a repair for the
third, the bytes read back exact, and once the peer is back the repair gives it its copy."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import pytest
from clusterkit import (
    Api,
    Body,
    cluster_ring,
    commit,
    labelled_metric,
    node_dir,
    presign,
    replica_versions,
)
from faultkit import FaultReport, wait_for_tmp_bytes

from shardgate.cli.dev import DevCluster

MiB = 1024 * 1024


async def _paced(body: Body) -> AsyncIterator[bytes]:
    async for chunk in body.chunks():
        yield chunk
        await asyncio.sleep(0.05)  # a slow client, so the kill lands mid-body


async def _put(session: aiohttp.ClientSession, url: str, body: Body) -> tuple[int, Any]:
    async with session.put(url, data=_paced(body)) as resp:
        return resp.status, await resp.json()


@pytest.fixture
def repairing_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevCluster]:
    """Three nodes, three replicas; repairs every second."""
    cluster = DevCluster(tmp_path_factory.mktemp("early"), port=0)
    cluster.env.update(
        {"SHARDGATE_GATEWAY_REPAIR_INTERVAL": "1", "SHARDGATE_GATEWAY_NODE_DOWN_BACKOFF": "0.5"}
    )
    cluster.start()
    yield cluster
    cluster.stop()


@pytest.mark.slow
async def test_peer_killed_mid_early_copy_costs_only_its_replica(
    repairing_cluster: DevCluster, session: aiohttp.ClientSession, fault_report: FaultReport
) -> None:
    cluster = repairing_cluster
    api = Api(session, cluster.url, cluster.api_key)
    await api.create_bucket("faults")
    body = Body(40 * MiB, seed=41)
    signed = await presign(api, "faults", "early/killed.bin")
    source = node_dir(cluster, signed.url).name
    victim, survivor = sorted(set(cluster.node_ids) - {source})  # 3 nodes: all are primaries

    upload = asyncio.ensure_future(_put(session, signed.url, body))
    await wait_for_tmp_bytes(cluster.data / victim / "tmp", 8 * MiB)
    cluster.kill_node(victim)
    fault_report.fault(f"SIGKILL {victim} while it received an early copy from {source}")
    status, answer = await upload
    assert status == 201, answer
    assert answer["size"] == body.size

    state = cluster.data / source / "pending" / f"{signed.upload_id}.json"
    assert json.loads(state.read_bytes())["copies"] == [survivor]
    assert not (cluster.data / victim / "pending" / f"{signed.upload_id}.data").exists()

    md5 = hashlib.md5(body.bytes()).hexdigest()
    stored = await commit(api, "faults", "early/killed.bin", signed.upload_id, body)
    assert sorted(stored["replicas"]) == sorted([source, survivor])
    holders = await replica_versions(
        session, cluster_ring(cluster), cluster.cluster_secret, "faults", "early/killed.bin"
    )
    assert set(holders) == {source, survivor}
    assert set(holders.values()) == {(stored["version"], md5)}
    assert await labelled_metric(api, "shardgate_gateway_repairs_queued_total") == 1
    assert list((cluster.data / victim / "objects").rglob("*.data")) == []
    intact = await api.get_sha256("faults", "early/killed.bin") == (200, body.sha256(), body.size)
    fault_report.objects(1, 0 if intact else 1)
    assert intact

    cluster.start_node(victim)
    for _ in range(600):
        holders = await replica_versions(
            session, cluster_ring(cluster), cluster.cluster_secret, "faults", "early/killed.bin"
        )
        if victim in holders:
            break
        await asyncio.sleep(0.1)
    assert holders.get(victim) == (stored["version"], md5)
