"""Keep-alive between the parts, against real processes: uploads through the gateway and the
early copies of direct uploads reuse their connections to the nodes, as the gateway's and the
nodes' connection counters show. Under the benchmark's load a body of declared length used to
end only when its end marker came, after the node had answered, and aiohttp dropped the
connection: 4,762 new connections for 3,000 small PUTs. A quiet machine seldom loses that race,
so the unit tests of the gateway's writer and of early copies show it deterministically."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from clusterkit import Api, Body, commit, metric, presign

from shardgate.cli.dev import DevCluster

BUCKET = "kept"
CONCURRENCY = 32
ROUNDS = 3
GATEWAY_OPENED = "shardgate_gateway_node_connections_opened_total"
PEERS_OPENED = "shardgate_node_peer_connections_opened_total"


@pytest.fixture
async def api(shared_cluster: DevCluster, session: aiohttp.ClientSession) -> Api:
    api = Api(session, shared_cluster.url, shared_cluster.api_key)
    await api.create_bucket(BUCKET)
    return api


async def _peer_connections(api: Api, cluster: DevCluster) -> float:
    return sum([await metric(api.session, s.url, PEERS_OPENED) for s in cluster.nodes.values()])


async def test_gateway_uploads_reuse_their_node_connections(api: Api) -> None:
    bodies = [Body(4096, seed=n) for n in range(CONCURRENCY)]

    async def put_all() -> None:
        # The same keys each round: the same replicas, so the same connections, take them.
        answers = await asyncio.gather(
            *(api.put(BUCKET, f"gateway/{n}", body.bytes()) for n, body in enumerate(bodies))
        )
        assert [status for status, _ in answers] == [201] * CONCURRENCY, answers

    await put_all()  # at most one connection per write in flight
    before = await metric(api.session, api.url, GATEWAY_OPENED)
    for _ in range(ROUNDS):
        await put_all()
    opened = await metric(api.session, api.url, GATEWAY_OPENED) - before
    writes = ROUNDS * CONCURRENCY * 3
    # Some slack: health probes share the pool, and a round may reach more writes in flight
    # per node than the first did. Without keep-alive it is one connection per write.
    assert opened <= writes // 16, f"{writes} replica writes opened {opened:.0f} connections"
    for n, body in enumerate(bodies):
        status, sha256, size = await api.get_sha256(BUCKET, f"gateway/{n}")
        assert (status, sha256, size) == (200, body.sha256(), body.size)


async def test_early_copies_reuse_their_peer_connections(
    api: Api, shared_cluster: DevCluster
) -> None:
    uploads = 8
    body = Body(256 * 1024, seed=7)

    async def upload(key: str) -> None:
        signed = await presign(api, BUCKET, key)
        async with api.session.put(signed.url, data=body.bytes()) as resp:
            assert resp.status == 201, await resp.text()
        answer = await commit(api, BUCKET, key, signed.upload_id, body)
        assert len(answer["replicas"]) == 3, answer

    await asyncio.gather(*(upload(f"direct/{n}") for n in range(uploads)))
    before = await _peer_connections(api, shared_cluster)
    for _ in range(ROUNDS):
        await asyncio.gather(*(upload(f"direct/{n}") for n in range(uploads)))
    opened = await _peer_connections(api, shared_cluster) - before
    copies = ROUNDS * uploads * 2
    assert opened <= copies // 6, f"{copies} early copies opened {opened:.0f} connections"
    status, sha256, size = await api.get_sha256(BUCKET, "direct/0")
    assert (status, sha256, size) == (200, body.sha256(), body.size)
