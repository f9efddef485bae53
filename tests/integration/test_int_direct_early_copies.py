"""Early copies, against real processes: while a client uploads straight to a node, the node
streams the bytes to the partition's other primaries, so the commit publishes every replica in
place and no bytes move between nodes; a peer that lost its copy is copied to at commit."""

from __future__ import annotations

import asyncio
import hashlib
import json

import aiohttp
import pytest
from clusterkit import (
    Api,
    Body,
    cluster_ring,
    commit,
    metric,
    node_dir,
    presign,
    replica_versions,
)

from ring import object_hash, partition_of
from shardgate.cli.dev import DevCluster
from shardgate.internal_api import pending_path
from shardgate.signing import sign_request

MiB = 1024 * 1024
BUCKET = "early"
RECEIVED = "shardgate_node_received_bytes_total"


@pytest.fixture(scope="module", autouse=True)
def bucket(shared_cluster: DevCluster) -> None:
    async def create() -> None:
        async with aiohttp.ClientSession() as session:
            await Api(session, shared_cluster.url, shared_cluster.api_key).create_bucket(BUCKET)

    asyncio.run(create())


@pytest.fixture
def api(shared_cluster: DevCluster, session: aiohttp.ClientSession) -> Api:
    return Api(session, shared_cluster.url, shared_cluster.api_key)


async def _upload(api: Api, cluster: DevCluster, key: str, body: Body) -> tuple[str, str]:
    """Presign and PUT `body` to the node; the upload id and the id of the node it went to."""
    signed = await presign(api, BUCKET, key)
    async with api.session.put(signed.url, data=body.bytes()) as resp:
        answer = await resp.json()
        assert resp.status == 201, answer
    assert signed.upload_id is not None
    return signed.upload_id, node_dir(cluster, signed.url).name


async def _received(session: aiohttp.ClientSession, cluster: DevCluster) -> float:
    return sum([await metric(session, s.url, RECEIVED) for s in cluster.nodes.values()])


def _pending_copies(cluster: DevCluster, upload_id: str) -> dict[str, str]:
    """node id -> sha256 of the pending bytes it holds for the upload."""
    found = {}
    for node_id in cluster.node_ids:
        data = cluster.data / node_id / "pending" / f"{upload_id}.data"
        if data.exists():
            found[node_id] = hashlib.sha256(data.read_bytes()).hexdigest()
    return found


def _primaries(cluster: DevCluster, key: str) -> set[str]:
    ring = cluster_ring(cluster)
    partition = partition_of(object_hash(BUCKET, key), ring.partition_power)
    return {node.id for node in ring.primaries(partition)}


async def test_an_upload_reaches_every_replica_as_it_arrives_and_commit_moves_no_bytes(
    api: Api, shared_cluster: DevCluster
) -> None:
    key = "arrive/every.bin"
    body = Body(3 * MiB + 17, seed=31)
    upload_id, source = await _upload(api, shared_cluster, key, body)

    copies = _pending_copies(shared_cluster, upload_id)
    assert set(copies) == _primaries(shared_cluster, key)
    assert set(copies.values()) == {body.sha256()}
    state = shared_cluster.data / source / "pending" / f"{upload_id}.json"
    assert set(json.loads(state.read_bytes())["copies"]) == set(copies) - {source}

    before = await _received(api.session, shared_cluster)
    stored = await commit(api, BUCKET, key, upload_id, body)
    assert await _received(api.session, shared_cluster) == before  # published in place
    assert set(stored["replicas"]) == set(copies)
    holders = await replica_versions(
        api.session, cluster_ring(shared_cluster), shared_cluster.cluster_secret, BUCKET, key
    )
    assert {version for version, _ in holders.values()} == {stored["version"]}
    assert set(holders) == set(copies)
    assert await api.get_sha256(BUCKET, key) == (200, body.sha256(), body.size)


async def _lose(
    cluster: DevCluster, session: aiohttp.ClientSession, peer: str, upload_id: str
) -> None:
    """Drop the peer's early copy, as the sweeper or the gateway would."""
    path = pending_path(upload_id)
    headers = sign_request(cluster.cluster_secret.encode(), "DELETE", path)
    async with session.delete(cluster.nodes[peer].url + path, headers=headers) as resp:
        assert resp.status == 200, await resp.text()
    assert peer not in _pending_copies(cluster, upload_id)


def _garble(cluster: DevCluster, peer: str, upload_id: str) -> None:
    """Make the peer's early copy differ from the source's (as if damaged in transit): its
    recorded block sums no longer match."""
    state = cluster.data / peer / "pending" / f"{upload_id}.json"
    upload = json.loads(state.read_bytes())
    upload["blocks"][0] ^= 1
    state.write_text(json.dumps(upload))


@pytest.mark.parametrize("fault", ["lost", "differs"])
async def test_a_peer_whose_early_copy_is_lost_or_differs_is_copied_to_at_commit(
    api: Api, shared_cluster: DevCluster, fault: str
) -> None:
    key = f"arrive/{fault}.bin"
    body = Body(2 * MiB + 5, seed=32)
    upload_id, source = await _upload(api, shared_cluster, key, body)
    peer = sorted(_primaries(shared_cluster, key) - {source})[0]
    if fault == "lost":
        await _lose(shared_cluster, api.session, peer, upload_id)
    else:
        _garble(shared_cluster, peer, upload_id)

    before = await _received(api.session, shared_cluster)
    stored = await commit(api, BUCKET, key, upload_id, body)
    assert await _received(api.session, shared_cluster) == before + body.size  # to `peer` only
    assert set(stored["replicas"]) == _primaries(shared_cluster, key)
    holders = await replica_versions(
        api.session, cluster_ring(shared_cluster), shared_cluster.cluster_secret, BUCKET, key
    )
    assert holders[peer] == (stored["version"], stored["etag"])
    assert await api.get_sha256(BUCKET, key) == (200, body.sha256(), body.size)
