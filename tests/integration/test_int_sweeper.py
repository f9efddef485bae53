"""Issue 7's must-shows against real processes: every kind of debris is made for real (a node
SIGKILLed mid-upload, a direct upload never committed, multipart uploads aborted and expired
and a delete, each while a node was down, tombstones) and one `shardgate sweep` returns every
node's disk to exactly what it held before; `--dry-run` reports that same sweep and removes
nothing; live objects keep all their replicas; slow uploads outlive many sweeps intact."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from clusterkit import (
    Api,
    Body,
    cluster_ring,
    md5_hex,
    metric_samples,
    nodes_holding,
    presign,
    replica_versions,
    run_cli,
)

from shardgate.cli.dev import DevCluster

KiB = 1024
MiB = 1024 * KiB
VICTIM = "n2"
OCTETS = "application/octet-stream"
GRACE = 2.0  # the nodes' sweep grace and tombstone reclaim age in the first cluster


def snapshot(cluster: DevCluster) -> dict[str, dict[str, int]]:
    """node id -> {path under its data dir: size} for every file the node holds."""
    return {
        node_id: {
            str(path.relative_to(cluster.data / node_id)): path.stat().st_size
            for path in (cluster.data / node_id).rglob("*")
            if path.is_file()
        }
        for node_id in cluster.node_ids
    }


def start(data: Path, env: dict[str, str]) -> DevCluster:
    cluster = DevCluster(data, port=0)
    cluster.env.update(env)
    cluster.start()
    return cluster


@pytest.fixture
def debris_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevCluster]:
    """Sweeps only when asked; short grace and reclaim ages; multipart uploads live 6 s."""
    data = tmp_path_factory.mktemp("sweep")
    cluster = start(
        data,
        {
            "SHARDGATE_NODE_SWEEP_INTERVAL": "0",
            "SHARDGATE_NODE_SWEEP_GRACE": str(GRACE),
            "SHARDGATE_NODE_TOMBSTONE_RECLAIM_AGE": str(GRACE),
            "SHARDGATE_GATEWAY_SWEEP_INTERVAL": "0",
            "SHARDGATE_GATEWAY_PENDING_GRACE": "1",
            "SHARDGATE_GATEWAY_UPLOAD_LIFETIME": "6",
            "SHARDGATE_GATEWAY_UPLOAD_EXPIRY_INTERVAL": "0.5",
            "SHARDGATE_GATEWAY_MIN_PART_SIZE": str(64 * KiB),
            "SHARDGATE_GATEWAY_NODE_DOWN_BACKOFF": "0.5",
        },
    )
    yield cluster
    cluster.stop()
    shutil.rmtree(data, ignore_errors=True)


async def call(api: Api, method: str, path: str, **kwargs: Any) -> Any:
    async with api.session.request(method, api.url + path, headers=api.auth, **kwargs) as resp:
        assert resp.status in (200, 201, 204), await resp.text()
        return None if resp.status == 204 else await resp.json()


async def multipart_with_one_part(api: Api, key: str, part: bytes) -> str:
    upload = await call(api, "POST", "/v1/uploads", json={"bucket": "sweep", "key": key})
    stored = await call(api, "PUT", f"/v1/uploads/{upload['upload_id']}/parts/1", data=part)
    assert stored["etag"] == md5_hex(part)
    return str(upload["upload_id"])


async def form_upload(api: Api, files: dict[str, Any]) -> list[dict[str, Any]]:
    form = aiohttp.FormData()
    for key, data in files.items():
        form.add_field("key", key)
        form.add_field("file", data, filename=key, content_type=OCTETS)
    answer = await call(api, "POST", "/v1/objects/sweep", data=form)
    return list(answer["objects"])


async def until(check: Any, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)


async def node_up(api: Api, node_id: str) -> bool:
    cluster = await call(api, "GET", "/v1/cluster")
    return any(n["id"] == node_id and n["up"] for n in cluster["nodes"])


async def make_live_objects(api: Api) -> dict[str, bytes]:
    """Plain objects, a completed multipart object and a form's two files: what must survive."""
    live = {f"live/{i}.bin": Body(100 * KiB + i, seed=i).bytes() for i in range(6)}
    for key, data in live.items():
        status, answer = await api.put("sweep", key, data)
        assert status == 201, answer
    parts = [Body(64 * KiB, seed=50).bytes(), Body(10 * KiB, seed=51).bytes()]
    upload = await call(api, "POST", "/v1/uploads", json={"bucket": "sweep", "key": "live/mp"})
    listed = []
    for number, part in enumerate(parts, 1):
        path = f"/v1/uploads/{upload['upload_id']}/parts/{number}"
        listed.append(
            {"part_number": number, "etag": (await call(api, "PUT", path, data=part))["etag"]}
        )
    path = f"/v1/uploads/{upload['upload_id']}/complete"
    await call(api, "POST", path, json={"parts": listed})
    live["live/mp"] = b"".join(parts)
    forms = {"live/form-a.txt": b"alpha" * 1000, "live/form-b.txt": b"beta" * 3000}
    await form_upload(api, forms)
    return live | forms


async def make_debris(cluster: DevCluster, api: Api) -> None:
    session, secret, ring = api.session, cluster.cluster_secret, cluster_ring(cluster)
    # A direct upload that is never committed (its token and commit window end in ~3 s).
    signed = await presign(api, "sweep", "debris/direct.bin", expires_in=2)
    async with session.put(signed.url, data=b"d" * 300 * KiB) as resp:
        assert resp.status == 201, await resp.text()
    for key in ("debris/deleted-while-down", "debris/deleted"):
        assert (await api.put("sweep", key, b"x" * 50 * KiB))[0] == 201
    assert (await call(api, "DELETE", "/v1/objects/sweep/debris/deleted")) is None
    aborted = await multipart_with_one_part(api, "debris/aborted", b"a" * 70 * KiB)
    expired = await multipart_with_one_part(api, "debris/expired", b"e" * 80 * KiB)

    # The victim is SIGKILLed while a write streams into its tmp/; the write still succeeds.
    body = Body(48 * MiB, seed=9)
    upload = asyncio.ensure_future(
        api.put("sweep", "debris/killed.bin", body.chunks(), **{"Content-Length": str(body.size)})
    )
    tmp = cluster.data / VICTIM / "tmp"

    async def victim_writing() -> bool:
        return any(p.stat().st_size >= 4 * MiB for p in tmp.glob("*.tmp"))

    await until(victim_writing, "the victim to be writing")
    cluster.kill_node(VICTIM)
    status, stored = await upload
    assert status == 201 and VICTIM not in stored["replicas"], stored  # type: ignore[operator]

    # While it is down: a delete, an abort and an expiry it never hears of.
    assert (await call(api, "DELETE", "/v1/objects/sweep/debris/deleted-while-down")) is None
    assert (await call(api, "DELETE", "/v1/objects/sweep/debris/killed.bin")) is None
    await call(api, "DELETE", f"/v1/uploads/{aborted}")

    async def expired_and_reclaimed() -> bool:
        return await replica_versions(session, ring, secret, "_parts", f"{expired}/1") == {}

    await until(expired_and_reclaimed, "the expiry job to reclaim the expired upload's part")
    cluster.start_node(VICTIM)
    await until(lambda: node_up(api, VICTIM), "the victim to be seen up again")
    held = await replica_versions(session, ring, secret, "sweep", "debris/deleted-while-down")
    assert list(held) == [VICTIM]  # the replica the catalog no longer has
    for upload_id in (aborted, expired):
        assert list(await replica_versions(session, ring, secret, "_parts", f"{upload_id}/1")) == [
            VICTIM
        ]


async def sweep(cluster: DevCluster, *flags: str) -> dict[str, Any]:
    done = await run_cli(cluster, "sweep", "--all", "--json", *flags)
    assert done.returncode == 0, done.stdout + done.stderr
    answer: dict[str, Any] = json.loads(done.stdout)
    return answer


@pytest.mark.slow
async def test_one_sweep_reclaims_every_kind_of_debris_and_nothing_else(
    debris_cluster: DevCluster, session: aiohttp.ClientSession
) -> None:
    cluster = debris_cluster
    api = Api(session, cluster.url, cluster.api_key)
    await api.create_bucket("sweep")
    live = await make_live_objects(api)
    before = snapshot(cluster)

    await make_debris(cluster, api)
    debris = snapshot(cluster)
    assert debris != before
    await asyncio.sleep(GRACE + 1.5)  # let every piece of debris age past the grace periods

    dry = await sweep(cluster, "--dry-run")
    assert snapshot(cluster) == debris  # a dry run removes nothing
    real = await sweep(cluster)
    assert snapshot(cluster) == before  # every node holds exactly what it held before

    by_node = {node["node"]: node for node in real["nodes"]}
    for node in dry["nodes"]:
        done = by_node[node["node"]]
        assert (node["kinds"], sorted(node["removed"])) == (done["kinds"], sorted(done["removed"]))
        assert node["error"] is None and done["errors"] == 0
    removed = {(node_id, path) for node_id, node in by_node.items() for path in node["removed"]}
    made = {(n, p) for n, files in debris.items() for p in files if p not in before[n]}
    assert removed == made  # exactly the debris, file by file
    kinds = real["kinds"]
    assert kinds["tmp"]["files"] == 1 and kinds["tmp"]["bytes"] >= 4 * MiB
    # The uncommitted direct upload and its two early copies: a data and a state file each.
    assert kinds["pending"] == {"files": 6, "bytes": debris_bytes(debris, "pending/")}
    assert kinds["parts"]["files"] == 2 and kinds["parts"]["bytes"] > 150 * KiB
    assert kinds["orphan"]["files"] == 1 and kinds["orphan"]["bytes"] > 50 * KiB
    assert kinds["tombstone"]["files"] == 7  # deleted x3, deleted-while-down x2, killed.bin x2
    assert real["bytes"] == sum(
        size for n, files in debris.items() for p, size in files.items() if p not in before[n]
    )
    await assert_counted(cluster, session, kinds)
    await assert_live_objects_whole(cluster, api, live)


def debris_bytes(files: dict[str, dict[str, int]], prefix: str) -> int:
    return sum(
        size for node in files.values() for path, size in node.items() if path.startswith(prefix)
    )


async def assert_counted(
    cluster: DevCluster, session: aiohttp.ClientSession, kinds: dict[str, Any]
) -> None:
    """The nodes' sweeper counters add up to the real sweep (the dry run counted nothing)."""
    counted: dict[str, float] = {}
    for service in cluster.nodes.values():
        for sample in await metric_samples(session, service.url):
            if sample.name == "shardgate_sweeper_reclaimed_files_total":
                kind = sample.labels["kind"]
                counted[kind] = counted.get(kind, 0) + sample.value
    assert counted == {kind: float(entry["files"]) for kind, entry in kinds.items()}


async def assert_live_objects_whole(cluster: DevCluster, api: Api, live: dict[str, bytes]) -> None:
    """Every object in the catalog reads back byte for byte, with all three replicas."""
    listing = await call(api, "GET", "/v1/objects/sweep?limit=1000")
    assert sorted(o["key"] for o in listing["objects"]) == sorted(live)
    ring = cluster_ring(cluster)
    for record in listing["objects"]:
        data = live[record["key"]]
        assert await api.get_sha256("sweep", record["key"]) == (
            200,
            hashlib.sha256(data).hexdigest(),
            len(data),
        )
        assert sorted(record["replicas"]) == cluster.node_ids
        if record["key"].startswith("live/form") or record["key"] == "live/mp":
            continue
        held = await replica_versions(
            api.session, ring, cluster.cluster_secret, "sweep", record["key"]
        )
        assert held == {n: (record["version"], record["etag"]) for n in cluster.node_ids}
    for key in ("live/form-a.txt", "live/form-b.txt"):
        assert nodes_holding(cluster, md5_hex(live[key]), len(live[key])) == set(cluster.node_ids)
    for part in (live["live/mp"][: 64 * KiB], live["live/mp"][64 * KiB :]):
        assert nodes_holding(cluster, md5_hex(part), len(part)) == set(cluster.node_ids)


@pytest.fixture
def sweeping_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevCluster]:
    """Nodes sweep every 0.3 s with a 1 s grace; the gateway checks for orphans every 0.5 s."""
    data = tmp_path_factory.mktemp("sweeping")
    cluster = start(
        data,
        {
            "SHARDGATE_NODE_SWEEP_INTERVAL": "0.3",
            "SHARDGATE_NODE_SWEEP_GRACE": "1",
            "SHARDGATE_GATEWAY_SWEEP_INTERVAL": "0.5",
            "SHARDGATE_GATEWAY_MIN_PART_SIZE": str(64 * KiB),
        },
    )
    yield cluster
    cluster.stop()
    shutil.rmtree(data, ignore_errors=True)


PAUSE = 1.6  # between chunks: longer than the grace age, so an idle temp file looks stale


async def slowly(data: bytes, pieces: int = 5) -> AsyncIterator[bytes]:
    step = -(-len(data) // pieces)
    for start in range(0, len(data), step):
        yield data[start : start + step]
        await asyncio.sleep(PAUSE)


@pytest.mark.slow
async def test_slow_uploads_outlive_many_sweeps_intact(
    sweeping_cluster: DevCluster, session: aiohttp.ClientSession
) -> None:
    cluster = sweeping_cluster
    api = Api(session, cluster.url, cluster.api_key)
    await api.create_bucket("sweep")
    stale = cluster.data / "n1" / "tmp" / "0123456789abcdef0123456789abcdef.tmp"
    stale.write_bytes(b"left by a crash")
    os.utime(stale, (time.time() - 60, time.time() - 60))

    plain = Body(600 * KiB, seed=1).bytes()
    direct_body = Body(500 * KiB, seed=2).bytes()
    part = Body(300 * KiB, seed=3).bytes()
    first, second = b"first file" * 100, Body(400 * KiB, seed=4).bytes()

    signed = await presign(api, "sweep", "slow/direct.bin", expires_in=600)
    upload = await call(api, "POST", "/v1/uploads", json={"bucket": "sweep", "key": "slow/mp"})

    async def slow_form() -> Any:
        form = aiohttp.FormData()
        form.add_field("key", "slow/form-1")
        form.add_field("file", first, filename="1", content_type=OCTETS)
        form.add_field("key", "slow/form-2")
        form.add_field("file", slowly(second), filename="2", content_type=OCTETS)
        return await call(api, "POST", "/v1/objects/sweep", data=form)

    async def slow_direct() -> None:
        async with session.put(signed.url, data=slowly(direct_body)) as resp:
            assert resp.status == 201, await resp.text()

    started = time.monotonic()
    plain_put, _, form, part_put = await asyncio.gather(
        api.put("sweep", "slow/plain.bin", slowly(plain)),
        slow_direct(),
        slow_form(),
        call(api, "PUT", f"/v1/uploads/{upload['upload_id']}/parts/1", data=slowly(part)),
    )
    assert time.monotonic() - started > 5 * PAUSE  # the uploads took several grace ages
    assert not stale.exists()  # sweeps ran meanwhile, and they do reclaim
    assert plain_put[0] == 201, plain_put
    assert len(form["objects"]) == 2
    committed = await call(
        api,
        "POST",
        "/v1/objects/sweep/slow/direct.bin/commit",
        json={"upload_id": signed.upload_id, "size": len(direct_body), "md5": md5_hex(direct_body)},
    )
    assert committed["size"] == len(direct_body)
    path = f"/v1/uploads/{upload['upload_id']}/complete"
    await call(api, "POST", path, json={"parts": [{"part_number": 1, "etag": part_put["etag"]}]})

    await asyncio.sleep(2.5)  # several more sweeps, the gateway's orphan checks included
    expected = {
        "slow/plain.bin": plain,
        "slow/direct.bin": direct_body,
        "slow/form-1": first,
        "slow/form-2": second,
        "slow/mp": part,
    }
    for key, data in expected.items():
        assert await api.get_sha256("sweep", key) == (
            200,
            hashlib.sha256(data).hexdigest(),
            len(data),
        ), key
    ring = cluster_ring(cluster)
    for key in ("slow/plain.bin", "slow/direct.bin"):
        held = await replica_versions(session, ring, cluster.cluster_secret, "sweep", key)
        assert sorted(held) == cluster.node_ids, key
    for data in (first, second, part):
        assert nodes_holding(cluster, md5_hex(data), len(data)) == set(cluster.node_ids)
