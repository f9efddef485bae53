"""Functional tests of uploads through the gateway that end early or carry unusual shapes:
empty bodies, reserved characters in keys, size limits passed mid-stream, clients hanging up."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import os
from collections.abc import AsyncIterator
from urllib.parse import quote

import pytest
from func_cluster import InProcCluster, wait_until

BUCKET = "uploads"


@pytest.fixture
async def cluster(inproc_cluster: InProcCluster) -> InProcCluster:
    await inproc_cluster.create_bucket(BUCKET)
    return inproc_cluster


def object_url(key: str) -> str:
    return f"/v1/objects/{BUCKET}/{quote(key, safe='/')}"


async def gateway_puts_answered(cluster: InProcCluster) -> int:
    text = await (await cluster.client.get("/metrics")).text()
    return sum(
        int(float(line.rsplit(" ", 1)[1]))
        for line in text.splitlines()
        if line.startswith("shardgate_http_requests_total{")
        and 'method="PUT"' in line
        and "/v1/objects/" in line
    )


async def test_empty_object(cluster: InProcCluster) -> None:
    resp = await cluster.client.put(object_url("empty"), data=b"", headers=cluster.auth)
    assert resp.status == 201
    created = await resp.json()
    assert (created["size"], created["etag"]) == (0, hashlib.md5(b"").hexdigest())
    assert await cluster.holders(BUCKET, "empty") == set(created["replicas"])
    resp = await cluster.client.get(object_url("empty"), headers=cluster.auth)
    assert resp.status == 200
    assert resp.headers["Content-Length"] == "0"
    assert await resp.read() == b""


async def test_a_body_sent_gzip_encoded_is_stored_decoded(cluster: InProcCluster) -> None:
    # The server decodes a Content-Encoding, so the header's length is the encoded body's; it
    # was once declared to the replicas as the decoded one's, and every replica refused it.
    body = os.urandom(50_000) + bytes(150_000)
    packed = gzip.compress(body)
    headers = {**cluster.auth, "Content-Encoding": "gzip"}
    resp = await cluster.client.put(object_url("packed"), data=packed, headers=headers)
    assert resp.status == 201, await resp.text()
    created = await resp.json()
    assert (created["size"], created["etag"]) == (len(body), hashlib.md5(body).hexdigest())
    assert len(created["replicas"]) == 3
    assert await cluster.holders(BUCKET, "packed") == set(created["replicas"])
    resp = await cluster.client.get(object_url("packed"), headers=cluster.auth)
    assert hashlib.sha256(await resp.read()).digest() == hashlib.sha256(body).digest()


@pytest.mark.parametrize("key", ["dir/ünï cødé?#%.txt", "a+b=c&d;e", "日本/語 ファイル"])
async def test_key_with_reserved_characters(cluster: InProcCluster, key: str) -> None:
    body = os.urandom(5000)
    resp = await cluster.client.put(object_url(key), data=body, headers=cluster.auth)
    assert resp.status == 201, await resp.text()
    created = await resp.json()
    assert created["key"] == key
    assert await cluster.holders(BUCKET, key) == set(created["replicas"])
    resp = await cluster.client.get(object_url(key), headers=cluster.auth)
    assert await resp.read() == body


async def test_bucket_limit_refuses_declared_size(cluster: InProcCluster) -> None:
    resp = await cluster.client.put(
        f"/v1/buckets/{BUCKET}", json={"max_object_size": 1000}, headers=cluster.auth
    )
    assert resp.status == 200
    resp = await cluster.client.put(object_url("big"), data=b"x" * 1001, headers=cluster.auth)
    assert resp.status == 413
    assert (await resp.json())["error"]["code"] == "EntityTooLarge"
    resp = await cluster.client.put(object_url("fits"), data=b"x" * 1000, headers=cluster.auth)
    assert resp.status == 201


async def test_bucket_limit_passed_mid_stream_leaves_nothing(cluster: InProcCluster) -> None:
    limit = 300_000
    resp = await cluster.client.put(
        f"/v1/buckets/{BUCKET}", json={"max_object_size": limit}, headers=cluster.auth
    )
    assert resp.status == 200

    async def stream() -> AsyncIterator[bytes]:
        for _ in range(6):
            yield os.urandom(100_000)

    resp = await cluster.client.put(object_url("too-big"), data=stream(), headers=cluster.auth)
    assert resp.status == 413
    assert (await resp.json())["error"]["code"] == "EntityTooLarge"
    await wait_until(cluster.running_nodes_idle)
    assert (await cluster.client.get(object_url("too-big"), headers=cluster.auth)).status == 404
    assert await cluster.holders(BUCKET, "too-big") == set()


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
async def test_client_hanging_up_mid_upload_leaves_nothing(
    cluster: InProcCluster, framing: str
) -> None:
    """The client sends 600 KB (more than two of the gateway's chunks), then disconnects."""
    sent = os.urandom(600_000)
    if framing == "chunked":
        framed_head, body = "Transfer-Encoding: chunked", f"{len(sent):x}\r\n".encode() + sent
    else:
        framed_head, body = "Content-Length: 5000000", sent
    head = (
        f"PUT {object_url('cut')} HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer k\r\n"
        f"{framed_head}\r\n\r\n"
    )
    assert cluster.client.server.port is not None
    _, writer = await asyncio.open_connection("127.0.0.1", cluster.client.server.port)
    writer.write(head.encode() + body)
    await writer.drain()
    writer.close()
    await writer.wait_closed()

    async def answered() -> bool:
        return await gateway_puts_answered(cluster) == 1

    await wait_until(answered)
    await wait_until(cluster.running_nodes_idle)
    assert (await cluster.client.get(object_url("cut"), headers=cluster.auth)).status == 404
    assert await cluster.holders(BUCKET, "cut") == set()
