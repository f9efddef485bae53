"""Must-shows 3 and 4: SIGKILLed nodes. Writes go on with a quorum and never show without one;
a node killed mid-write never serves the partial object and leaves only its tmp file behind."""

from __future__ import annotations

import asyncio
import signal

import aiohttp
import pytest
from clusterkit import Api, Body, cluster_ring, replica_versions
from faultkit import wait_for_tmp_bytes

from shardgate.cli.dev import DevCluster

KiB = 1024
MiB = 1024 * KiB


async def _put_all(api: Api, bucket: str, prefix: str, count: int) -> dict[str, Body]:
    bodies = {
        f"{prefix}/{i}": Body(64 * KiB + i, seed=hash(prefix) % 1000 + i) for i in range(count)
    }
    for key, body in bodies.items():
        status, stored = await api.put(bucket, key, body.bytes())
        assert status == 201, stored
    return bodies


async def _assert_readable(api: Api, bucket: str, bodies: dict[str, Body]) -> None:
    for key, body in bodies.items():
        assert await api.get_sha256(bucket, key) == (200, body.sha256(), body.size), key


@pytest.mark.slow
async def test_writes_survive_one_killed_node_and_fail_cleanly_without_quorum(
    cluster: DevCluster, session: aiohttp.ClientSession
) -> None:
    api = Api(session, cluster.url, cluster.api_key)
    await api.create_bucket("faults")
    before = await _put_all(api, "faults", "before", 20)

    cluster.kill_node("n2")
    after = await _put_all(api, "faults", "after", 20)
    await _assert_readable(api, "faults", before | after)
    ring = cluster_ring(cluster)
    for key in after:
        holders = await replica_versions(session, ring, cluster.cluster_secret, "faults", key)
        assert sorted(holders) == ["n1", "n3"], key

    cluster.kill_node("n3")
    async with session.put(
        api.object_url("faults", "orphan"), data=b"x" * 100_000, headers=api.auth
    ) as resp:
        assert resp.status == 503
        error = (await resp.json())["error"]
        assert error["code"] == "InsufficientReplicas" and error["message"]
    assert (await api.get_sha256("faults", "orphan"))[0] == 404
    # The surviving replica took the bytes, then had them withdrawn: nothing to resurrect later.
    assert await replica_versions(session, ring, cluster.cluster_secret, "faults", "orphan") == {}

    cluster.start_node("n2")
    cluster.start_node("n3")
    assert (await api.get_sha256("faults", "orphan"))[0] == 404
    await _assert_readable(api, "faults", before | after)


@pytest.mark.slow
async def test_node_killed_mid_write_never_serves_partial_object(
    cluster: DevCluster, session: aiohttp.ClientSession
) -> None:
    api = Api(session, cluster.url, cluster.api_key)
    await api.create_bucket("faults")
    body = Body(200 * MiB, seed=7)
    victim = "n1"
    tmp = cluster.data / victim / "tmp"

    upload = asyncio.ensure_future(
        api.put("faults", "big.bin", body.chunks(), **{"Content-Length": str(body.size)})
    )
    await wait_for_tmp_bytes(tmp, 20 * MiB)
    cluster.nodes[victim].process.send_signal(signal.SIGKILL)
    cluster.nodes[victim].process.wait()
    status, stored = await upload
    assert status == 201, stored
    assert victim not in stored["replicas"]  # type: ignore[operator]

    debris = list(tmp.iterdir())
    assert len(debris) == 1 and debris[0].suffix == ".tmp"
    assert 20 * MiB <= debris[0].stat().st_size < body.size

    cluster.start_node(victim)
    holders = await replica_versions(
        session, cluster_ring(cluster), cluster.cluster_secret, "faults", "big.bin"
    )
    assert victim not in holders and len(holders) == 2
    assert list((cluster.data / victim / "objects").rglob("*.data")) == []
    assert [p.name for p in tmp.iterdir()] == [debris[0].name]
    assert await api.get_sha256("faults", "big.bin") == (200, body.sha256(), body.size)
