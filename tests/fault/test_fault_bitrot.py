"""Issue 9's must-show 4 against real processes: one byte flipped in a stored replica is never
served (reads check every block before sending it and fail over to a good replica at that
byte), the copy is quarantined and a good one pushed back by another replica, and the scrubber
finds a flipped byte nobody has read."""

from __future__ import annotations

import asyncio
import hashlib
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from clusterkit import Api, Body, cluster_ring, metric_samples, replica_versions
from faultkit import FaultReport

from ring import object_hash
from shardgate.cli.dev import DevCluster
from shardgate.internal_api import PREFIX, object_path, version_path
from shardgate.signing import sign_request
from storage_node.version_file import read_meta_at

MiB = 1024 * 1024


def data_file(cluster: DevCluster, node_id: str, key: str, version: str) -> Path:
    obj_hash = object_hash("rot", key)
    found = list((cluster.data / node_id / "objects").glob(f"*/{obj_hash}/{version}.data"))
    assert len(found) == 1, found
    return found[0]


def stored_body(path: Path) -> bytes:
    """A version file's object bytes, without the metadata trailer (which must parse)."""
    return path.read_bytes()[: read_meta_at(path).size]


def flip(path: Path, offset: int) -> None:
    with path.open("r+b") as fh:
        fh.seek(offset)
        byte = fh.read(1)
        fh.seek(offset)
        fh.write(bytes([byte[0] ^ 0x01]))


async def corrupt_count(session: aiohttp.ClientSession, url: str, found_by: str) -> float:
    for sample in await metric_samples(session, url):
        wanted = sample.name == "shardgate_scrubber_corrupt_objects_total"
        if wanted and sample.labels == {"found_by": found_by}:
            return sample.value
    raise AssertionError("no scrubber corruption counter")


async def wait_restored(
    cluster: DevCluster,
    session: aiohttp.ClientSession,
    node_id: str,
    key: str,
    stored: Any,
    data: bytes,
) -> None:
    """The node holds the version again, byte for byte (pushed back by another replica)."""
    ring = cluster_ring(cluster)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        held = await replica_versions(session, ring, cluster.cluster_secret, "rot", key)
        if held.get(node_id) == (stored["version"], stored["etag"]):
            break
        await asyncio.sleep(0.2)
    path = data_file(cluster, node_id, key, stored["version"])
    assert hashlib.sha256(stored_body(path)).digest() == hashlib.sha256(data).digest()


def quarantined(cluster: DevCluster, node_id: str, key: str, version: str) -> list[str]:
    root = cluster.data / node_id / "quarantine"
    return sorted(p.name for p in root.glob(f"*/{object_hash('rot', key)}/{version}.*"))


# Nodes check and send windows, the first of 4 MiB: a bad block in it turns the answer into an
# error before any byte leaves; one further on ends the answer short after the good windows,
# and the gateway resumes on another replica at that byte.
@pytest.mark.parametrize(
    ("size", "bad_byte"),
    [(3 * MiB + 12345, 2 * MiB + 777), (10 * MiB + 12345, 6 * MiB + 777)],
    ids=["first-window", "mid-answer"],
)
async def test_a_flipped_byte_is_never_served_and_the_copy_is_replaced(
    cluster: DevCluster,
    session: aiohttp.ClientSession,
    fault_report: FaultReport,
    size: int,
    bad_byte: int,
) -> None:
    api = Api(session, cluster.url, cluster.api_key)
    await api.create_bucket("rot")
    body = Body(size, seed=5)
    data = body.bytes()
    status, stored = await api.put("rot", "photo.bin", data)
    assert status == 201, stored
    first = stored["replicas"][0]  # the replica a read asks first
    flip(data_file(cluster, first, "photo.bin", stored["version"]), bad_byte)
    fault_report.fault(f"flipped one byte in block {bad_byte // MiB} of {first}'s copy")

    assert await api.get_sha256("rot", "photo.bin") == (200, body.sha256(), len(data))
    assert quarantined(cluster, first, "photo.bin", stored["version"]) == [
        f"{stored['version']}.data"
    ]
    assert await corrupt_count(session, cluster.nodes[first].url, "read") == 1
    await wait_restored(cluster, session, first, "photo.bin", stored, data)
    # And the restored copy serves a range across the block that was bad.
    low, high = bad_byte - 5 * MiB // 2, bad_byte + 1000
    headers = {"Range": f"bytes={max(low, 0)}-{high}"}
    async with session.get(
        api.object_url("rot", "photo.bin"), headers={**api.auth, **headers}
    ) as resp:
        assert resp.status == 206
        assert await resp.read() == data[max(low, 0) : high + 1]
    fault_report.objects(1, 0)


async def test_the_scrubber_finds_a_flipped_byte_nobody_read(
    cluster: DevCluster, session: aiohttp.ClientSession, fault_report: FaultReport
) -> None:
    api = Api(session, cluster.url, cluster.api_key)
    await api.create_bucket("rot")
    objects = {f"doc/{i}": Body(200_000 + i * 1000, seed=i).bytes() for i in range(5)}
    answers = {}
    for key, data in objects.items():
        status, answers[key] = await api.put("rot", key, data)
        assert status == 201
    victim_key = "doc/3"
    last = answers[victim_key]["replicas"][-1]  # a replica reads would reach last
    flip(data_file(cluster, last, victim_key, answers[victim_key]["version"]), 100)
    fault_report.fault(f"flipped one byte in {last}'s copy of {victim_key}, then scrubbed")

    node_url = cluster.nodes[last].url
    path = PREFIX + "/scrub"
    headers = sign_request(cluster.cluster_secret.encode(), "POST", path)
    async with session.post(node_url + path, headers=headers) as resp:
        assert resp.status == 200, await resp.text()
        report = await resp.json()
    assert report["corrupt"] == 1
    assert report["objects"] == len(objects) - 1  # the bad one is not counted as checked
    assert await corrupt_count(session, node_url, "scrub") == 1
    version = answers[victim_key]["version"]
    assert quarantined(cluster, last, victim_key, version) == [f"{version}.data"]
    await wait_restored(
        cluster, session, last, victim_key, answers[victim_key], objects[victim_key]
    )
    for key, data in objects.items():
        digest = hashlib.sha256(data).hexdigest()
        assert await api.get_sha256("rot", key) == (200, digest, len(data))
    fault_report.objects(len(objects), 0)


async def signed(
    session: aiohttp.ClientSession, cluster: DevCluster, method: str, url: str, path: str, **kw: Any
) -> tuple[int, Any]:
    headers = sign_request(cluster.cluster_secret.encode(), method, path)
    async with session.request(method, url + path, headers=headers, **kw) as resp:
        return resp.status, await resp.json(content_type=None)


async def test_a_copy_that_rotted_on_its_sender_is_refused_by_the_receiver(
    cluster: DevCluster, session: aiohttp.ClientSession, fault_report: FaultReport
) -> None:
    """Copies are vouched for by block sums, so a push from a rotted copy is refused and the
    receiver keeps nothing, while a push from a sound copy lands byte for byte."""
    api = Api(session, cluster.url, cluster.api_key)
    await api.create_bucket("rot")
    body = Body(3 * MiB + 999, seed=9)
    data = body.bytes()
    status, stored = await api.put("rot", "spread.bin", data)
    assert status == 201, stored
    rotted, sound, receiver = stored["replicas"]
    version = stored["version"]
    flip(data_file(cluster, rotted, "spread.bin", version), MiB + 12345)
    fault_report.fault(f"flipped one byte in {rotted}'s copy, then asked it to push")
    obj_hash = object_hash("rot", "spread.bin")
    partition = int(data_file(cluster, receiver, "spread.bin", version).parent.parent.name)
    base = object_path(partition, obj_hash)
    receiver_url = cluster.nodes[receiver].url
    status, answer = await signed(
        session, cluster, "DELETE", receiver_url, version_path(partition, obj_hash, version)
    )
    assert (status, answer) == (200, {"discarded": True})

    push = {"peer_url": receiver_url, "version": version}
    node_url = cluster.nodes[rotted].url
    status, answer = await signed(session, cluster, "POST", node_url, base + "/push", json=push)
    assert status == 200, answer
    assert answer["status"] == 400, answer
    assert answer["answer"]["error"]["code"] == "BadDigest", answer
    assert not list((cluster.data / receiver / "objects").glob(f"*/{obj_hash}/*.data"))
    assert not list((cluster.data / receiver / "tmp").iterdir())

    status, answer = await signed(
        session, cluster, "POST", cluster.nodes[sound].url, base + "/push", json=push
    )
    assert (status, answer["status"]) == (200, 201), answer
    copy = data_file(cluster, receiver, "spread.bin", version)
    assert hashlib.sha256(stored_body(copy)).hexdigest() == body.sha256()
    fault_report.objects(1, 0)
