"""Must-show 5: an upload left past its lifetime is aborted by the gateway's expiry job, which
takes its parts back off the nodes; afterwards its id answers 404 NoSuchUpload everywhere."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from clusterkit import Api, committed_bytes, md5_hex, nodes_holding, start_cluster

from shardgate.cli.dev import DevCluster
from shardgate.transfer import PART_META, SIZE_META, Gateway, Uploader

KiB = 1024
MiB = 1024 * KiB
LIFETIME = 2.0


@pytest.fixture
def expiring(tmp_path: Path) -> Iterator[DevCluster]:
    """Uploads live two seconds; the expiry job runs every second."""
    cluster = start_cluster(tmp_path, upload_lifetime=str(LIFETIME), upload_expiry_interval="1")
    yield cluster
    cluster.stop()


@pytest.fixture
def unswept(tmp_path: Path) -> Iterator[DevCluster]:
    """Uploads live two seconds, but the expiry job does not come round for an hour."""
    cluster = start_cluster(
        tmp_path, upload_lifetime=str(LIFETIME), upload_expiry_interval="3600", min_part_size="1024"
    )
    yield cluster
    cluster.stop()


async def call(api: Api, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
    async with api.session.request(method, api.url + path, headers=api.auth, **kwargs) as resp:
        return resp.status, (await resp.json() if resp.status != 204 else None)


async def in_progress(api: Api, bucket: str) -> list[str]:
    status, body = await call(api, "GET", "/v1/uploads", params={"bucket": bucket})
    assert status == 200, body
    return [upload["upload_id"] for upload in body["uploads"]]


async def test_expired_upload_is_reclaimed_by_the_expiry_job(
    expiring: DevCluster, session: aiohttp.ClientSession
) -> None:
    api = Api(session, expiring.url, expiring.api_key)
    await api.create_bucket("left")
    before = committed_bytes(expiring)
    began = time.monotonic()
    status, upload = await call(api, "POST", "/v1/uploads", json={"bucket": "left", "key": "k"})
    assert status == 201
    upload_id = upload["upload_id"]
    status, empty = await call(api, "POST", "/v1/uploads", json={"bucket": "left", "key": "e"})
    assert status == 201
    body = random.Random(5).randbytes(MiB)
    status, part = await call(api, "PUT", f"/v1/uploads/{upload_id}/parts/1", data=body)
    assert status == 200, part
    assert nodes_holding(expiring, part["etag"], MiB) == set(expiring.node_ids)
    assert committed_bytes(expiring) == before + 3 * MiB

    reclaimed = None
    while time.monotonic() - began < 10:
        if not nodes_holding(expiring, part["etag"], MiB) and not await in_progress(api, "left"):
            reclaimed = time.monotonic() - began
            break
        await asyncio.sleep(0.1)
    assert reclaimed is not None, "the expiry job did not reclaim the upload within 10 s"
    assert reclaimed >= LIFETIME
    print(f"\nexpired upload reclaimed {reclaimed:.1f}s after it was started")
    assert committed_bytes(expiring) == before
    etag = md5_hex(body)
    for status, answer in [
        await call(api, "GET", f"/v1/uploads/{upload_id}"),
        await call(api, "GET", f"/v1/uploads/{empty['upload_id']}"),
        await call(api, "PUT", f"/v1/uploads/{upload_id}/parts/2", data=b"late"),
        await call(
            api,
            "POST",
            f"/v1/uploads/{upload_id}/complete",
            json={"parts": [{"part_number": 1, "etag": etag}]},
        ),
        await call(api, "DELETE", f"/v1/uploads/{upload_id}"),
    ]:
        assert (status, answer["error"]["code"]) == (404, "NoSuchUpload")
    assert (await api.get_sha256("left", "k"))[0] == 404


async def test_a_put_after_expiry_starts_afresh_before_the_expiry_job_runs(
    unswept: DevCluster, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    api = Api(session, unswept.url, unswept.api_key)
    await api.create_bucket("stale")
    source = tmp_path / "three-parts.bin"
    source.write_bytes(random.Random(6).randbytes(5 * KiB))
    meta = {SIZE_META: str(5 * KiB), PART_META: str(2 * KiB)}
    status, upload = await call(
        api, "POST", "/v1/uploads", json={"bucket": "stale", "key": "s.bin", "metadata": meta}
    )
    assert status == 201
    upload_id = upload["upload_id"]
    while (await call(api, "GET", f"/v1/uploads/{upload_id}"))[0] != 404:
        await asyncio.sleep(0.1)  # waiting out the lifetime: here time is the subject

    assert upload_id not in await in_progress(api, "stale")
    uploader = Uploader(
        Gateway(session, unswept.url, unswept.api_key), part_size=2 * KiB, parallel=2, quiet=True
    )
    record = await uploader.upload(source, "stale", "s.bin", "application/octet-stream")
    assert record["size"] == 5 * KiB
