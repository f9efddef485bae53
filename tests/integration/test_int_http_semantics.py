"""Must-shows 5 and 7 against real processes: ranges, validators, HEAD headers, concurrent
overwrites converging on one newest version, and authentication at both layers."""

from __future__ import annotations

import asyncio
import email.utils
import hashlib

import aiohttp
import pytest
from clusterkit import Api, Body, cluster_ring, replica_versions

from ring import object_hash, partition_of
from shardgate.cli.dev import DevCluster
from shardgate.internal_api import object_path
from shardgate.signing import sign_request

SIZE = 1_000_003


@pytest.fixture
async def stored(
    shared_cluster: DevCluster, session: aiohttp.ClientSession
) -> tuple[Api, bytes, dict[str, object]]:
    api = Api(session, shared_cluster.url, shared_cluster.api_key)
    await api.create_bucket("semantics")
    data = Body(SIZE, seed=5).bytes()
    status, record = await api.put(
        "semantics", "doc.bin", data, **{"Content-Type": "application/x-test"}
    )
    assert status == 201
    return api, data, record


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        ("bytes=0-99", 0, 100),
        ("bytes=500000-500999", 500_000, 501_000),
        ("bytes=-4096", SIZE - 4096, SIZE),
        ("bytes=999000-", 999_000, SIZE),
    ],
)
async def test_ranges(
    stored: tuple[Api, bytes, dict[str, object]], header: str, start: int, end: int
) -> None:
    api, data, _ = stored
    async with api.session.get(
        api.object_url("semantics", "doc.bin"), headers={**api.auth, "Range": header}
    ) as resp:
        assert resp.status == 206
        assert resp.headers["Content-Range"] == f"bytes {start}-{end - 1}/{SIZE}"
        assert await resp.read() == data[start:end]


async def test_unsatisfiable_range_is_416(stored: tuple[Api, bytes, dict[str, object]]) -> None:
    api, _, _ = stored
    headers = {**api.auth, "Range": f"bytes={SIZE}-"}
    async with api.session.get(api.object_url("semantics", "doc.bin"), headers=headers) as resp:
        assert resp.status == 416
        assert (await resp.json())["error"]["code"] == "InvalidRange"
        assert resp.headers["Content-Range"] == f"bytes */{SIZE}"


async def test_validators_and_head(stored: tuple[Api, bytes, dict[str, object]]) -> None:
    api, data, record = stored
    etag = hashlib.md5(data).hexdigest()
    assert record["etag"] == etag
    url = api.object_url("semantics", "doc.bin")
    async with api.session.get(url, headers={**api.auth, "If-None-Match": f'"{etag}"'}) as resp:
        assert resp.status == 304
        assert await resp.read() == b""
    async with api.session.get(url, headers={**api.auth, "If-None-Match": '"other"'}) as resp:
        assert resp.status == 200 and await resp.read() == data
    async with api.session.head(url, headers=api.auth) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Length"] == str(SIZE)
        assert resp.headers["ETag"] == f'"{etag}"'
        assert resp.headers["Content-Type"] == "application/x-test"
        modified = email.utils.parsedate_to_datetime(resp.headers["Last-Modified"]).timestamp()
        assert abs(modified - int(str(record["version"])) / 1e9) < 1.5
        assert await resp.read() == b""


async def test_concurrent_overwrites_converge(
    shared_cluster: DevCluster, session: aiohttp.ClientSession
) -> None:
    api = Api(session, shared_cluster.url, shared_cluster.api_key)
    await api.create_bucket("semantics")
    bodies = [Body(32 * 1024 + i, seed=100 + i).bytes() for i in range(50)]
    results = await asyncio.gather(*(api.put("semantics", "hot", body) for body in bodies))
    assert all(status == 201 for status, _ in results)
    newest = max(results, key=lambda r: str(r[1]["version"]))[1]

    held = await replica_versions(
        session, cluster_ring(shared_cluster), shared_cluster.cluster_secret, "semantics", "hot"
    )
    assert len(held) == 3
    assert set(held.values()) == {(newest["version"], newest["etag"])}
    status, digest, size = await api.get_sha256("semantics", "hot")
    winner = bodies[[r[1]["version"] for r in results].index(newest["version"])]
    assert (status, digest, size) == (200, hashlib.sha256(winner).hexdigest(), len(winner))


async def test_gateway_requires_a_valid_key(
    shared_cluster: DevCluster, session: aiohttp.ClientSession
) -> None:
    url = f"{shared_cluster.url}/v1/buckets/semantics"
    for headers in (
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": f"Basic {shared_cluster.api_key}"},
    ):
        async with session.get(url, headers=headers) as resp:
            assert resp.status == 401
            assert (await resp.json())["error"]["code"] == "Unauthorized"


async def test_node_rejects_unsigned_and_tampered_requests(
    shared_cluster: DevCluster, session: aiohttp.ClientSession
) -> None:
    node = cluster_ring(shared_cluster).nodes[0]
    obj_hash = object_hash("semantics", "doc.bin")
    path = object_path(partition_of(obj_hash, 12), obj_hash)
    good = sign_request(shared_cluster.cluster_secret.encode(), "GET", path)
    signature = good["X-Shardgate-Signature"]
    # Change the last digit to another one (a fixed "0" left one signature in 16 untouched).
    tampered = {**good, "X-Shardgate-Signature": signature[:-1] + "01"[signature[-1] == "0"]}
    other_path = sign_request(shared_cluster.cluster_secret.encode(), "GET", path + "x")
    wrong_secret = sign_request(b"not the cluster secret", "GET", path)
    stale = sign_request(shared_cluster.cluster_secret.encode(), "GET", path, now=0)
    for headers in ({}, tampered, other_path, wrong_secret, stale):
        async with session.get(node.url + path, headers=headers) as resp:
            assert resp.status == 401
            assert (await resp.json())["error"]["code"] == "Unauthorized"
    async with session.put(node.url + path, data=b"evil") as resp:
        assert resp.status == 401
