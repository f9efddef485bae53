"""Functional tests of the gateway's quorum, handoff and failover behaviour while in-process
storage nodes are stopped, and of concurrent overwrites converging on every replica."""

from __future__ import annotations

import asyncio
import hashlib
import os
from typing import Any

import pytest
from func_cluster import InProcCluster, wait_until

from shardgate.internal_api import VERSION_HEADER

BUCKET = "faults"
BODY = os.urandom(64 * 1024)
MD5 = hashlib.md5(BODY).hexdigest()

# "fresh": the gateway learns that a node is down from the write itself;
# "probed": its health probe has already marked the node down before the write.
DISCOVERY = pytest.mark.parametrize("discovery", ["fresh", "probed"])


@pytest.fixture
async def cluster(inproc_cluster: InProcCluster) -> InProcCluster:
    await inproc_cluster.create_bucket(BUCKET)
    return inproc_cluster


async def stop_nodes(cluster: InProcCluster, node_ids: list[str], discovery: str) -> None:
    await cluster.stop(*node_ids)
    if discovery == "probed":
        await cluster.wait_seen_down(*node_ids)


async def put(cluster: InProcCluster, key: str, body: bytes = BODY) -> tuple[int, dict[str, Any]]:
    resp = await cluster.client.put(f"/v1/objects/{BUCKET}/{key}", data=body, headers=cluster.auth)
    return resp.status, dict(await resp.json())


async def get_body(cluster: InProcCluster, key: str) -> tuple[int, bytes]:
    resp = await cluster.client.get(f"/v1/objects/{BUCKET}/{key}", headers=cluster.auth)
    return resp.status, await resp.read()


async def test_read_fails_over_when_a_replica_is_stopped(cluster: InProcCluster) -> None:
    status, created = await put(cluster, "before")
    assert status == 201
    await cluster.stop(created["replicas"][0])
    for _ in range(3):  # the first read finds the node gone, later ones skip it
        assert await get_body(cluster, "before") == (200, BODY)


@DISCOVERY
async def test_one_primary_down_writes_to_a_handoff(cluster: InProcCluster, discovery: str) -> None:
    key = "one-down"
    primaries, handoffs = cluster.primaries(BUCKET, key), cluster.handoffs(BUCKET, key)
    await stop_nodes(cluster, primaries[:1], discovery)

    status, created = await put(cluster, key)
    assert status == 201, created
    assert created["etag"] == MD5
    assert set(created["replicas"]) == {*primaries[1:], handoffs[0]}
    assert await cluster.holders(BUCKET, key) == set(created["replicas"])
    assert await get_body(cluster, key) == (200, BODY)


@DISCOVERY
async def test_two_primaries_down_still_reach_quorum(
    cluster: InProcCluster, discovery: str
) -> None:
    key = "two-down"
    primaries, handoffs = cluster.primaries(BUCKET, key), cluster.handoffs(BUCKET, key)
    await stop_nodes(cluster, primaries[:2], discovery)

    status, created = await put(cluster, key)
    assert status == 201, created
    alive = {primaries[2], handoffs[0]}
    assert set(created["replicas"]) == alive
    assert await cluster.holders(BUCKET, key) == alive
    assert await get_body(cluster, key) == (200, BODY)


@DISCOVERY
async def test_below_quorum_the_write_is_refused_and_invisible(
    cluster: InProcCluster, discovery: str
) -> None:
    key = "three-down"
    survivor = cluster.primaries(BUCKET, key)[0]
    await stop_nodes(cluster, [n for n in cluster.node_ids if n != survivor], discovery)

    resp = await cluster.client.put(f"/v1/objects/{BUCKET}/{key}", data=BODY, headers=cluster.auth)
    assert resp.status == 503
    assert (await resp.json())["error"]["code"] == "InsufficientReplicas"
    assert int(resp.headers["Retry-After"]) > 0
    assert (await get_body(cluster, key))[0] == 404
    assert await cluster.holders(BUCKET, key) == set()


async def test_cluster_view_and_readiness_follow_node_state(cluster: InProcCluster) -> None:
    first, *others = cluster.node_ids
    await stop_nodes(cluster, [first], "probed")
    resp = await cluster.client.get("/v1/cluster", headers=cluster.auth)
    up = {node["id"]: node["up"] for node in (await resp.json())["nodes"]}
    assert up == {first: False, **{n: True for n in others}}
    resp = await cluster.client.get("/readyz")
    assert (resp.status, (await resp.json())["nodes_up"]) == (200, 3)

    await stop_nodes(cluster, others[:2], "probed")

    async def unready() -> bool:
        return (await cluster.client.get("/readyz")).status == 503

    await wait_until(unready)


async def test_concurrent_overwrites_converge(cluster: InProcCluster) -> None:
    key = "contended"
    bodies = [os.urandom(50_000 + n) for n in range(20)]
    results = await asyncio.gather(*(put(cluster, key, body) for body in bodies))
    assert [status for status, _ in results] == [201] * 20
    winner = max((created for _, created in results), key=lambda created: created["version"])
    body_of = {hashlib.md5(body).hexdigest(): body for body in bodies}

    resp = await cluster.client.get(f"/v1/objects/{BUCKET}/{key}", headers=cluster.auth)
    assert resp.status == 200
    assert resp.headers[VERSION_HEADER] == winner["version"]
    assert resp.headers["ETag"] == f'"{winner["etag"]}"'
    assert await resp.read() == body_of[winner["etag"]]

    await cluster.settled()  # answered at W: the third replica may still be committing
    for node_id in cluster.primaries(BUCKET, key):
        answer = await cluster.on_node(node_id, BUCKET, key)
        assert answer.status == 200, node_id
        assert answer.headers[VERSION_HEADER] == winner["version"], node_id
        assert answer.headers["ETag"] == f'"{winner["etag"]}"', node_id


async def test_returning_stale_primary_never_serves_old_bytes(cluster: InProcCluster) -> None:
    key = "stale"
    primaries, handoffs = cluster.primaries(BUCKET, key), cluster.handoffs(BUCKET, key)
    assert (await put(cluster, key, b"old bytes"))[0] == 201
    await stop_nodes(cluster, primaries[:1], "probed")
    status, created = await put(cluster, key, b"new bytes")
    assert status == 201
    assert set(created["replicas"]) == {*primaries[1:], handoffs[0]}

    await cluster.restart(primaries[0])
    answer = await cluster.on_node(primaries[0], BUCKET, key, method="GET")
    assert answer.body == b"old bytes"  # it missed the overwrite
    await stop_nodes(cluster, primaries[1:], "probed")
    # Only the handoff holds the new version; the returning primary must not answer for it.
    for _ in range(3):
        assert await get_body(cluster, key) == (200, b"new bytes")
