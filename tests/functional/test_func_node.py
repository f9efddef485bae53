"""Functional tests of one storage node app, driven in-process over HTTP: signatures, the
object protocol (versions, tombstones, ranges, validators), partition listings and metrics.

Every case that touches stored objects runs against the disk store and the memory store
(see the node_client fixture), so the two backends are held to the same contract.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import AsyncIterator
from email.utils import parsedate_to_datetime

import pytest
from func_node_kit import BUCKET, KEY, POWER, Client, get, identity, locate, put, signed

from shardgate.internal_api import (
    BUCKET_HEADER,
    KEY_HEADER,
    MIN_VERSION_HEADER,
    TOMBSTONE_HEADER,
    VERSION_HEADER,
    encode_key,
    partition_path,
    version_path,
)
from shardgate.versions import VersionClock, version_to_timestamp
from storage_node.keys import STORE


@pytest.fixture
def body() -> bytes:
    return os.urandom(1000)


async def test_unsigned_internal_request_is_refused(node_client: Client) -> None:
    resp = await node_client.get(locate()[2])
    assert resp.status == 401
    payload = await resp.json()
    assert payload["error"]["code"] == "Unauthorized"
    assert payload["error"]["message"]


@pytest.mark.parametrize("case", ["tampered", "other-path", "other-method", "stale"])
async def test_bad_signature_is_refused(node_client: Client, case: str) -> None:
    path = locate()[2]
    headers = {
        "tampered": lambda: {**signed("GET", path), "X-Shardgate-Signature": "0" * 64},
        "other-path": lambda: signed("GET", locate(key="other")[2]),
        "other-method": lambda: signed("DELETE", path),
        "stale": lambda: signed("GET", path, now=time.time() - 3600),
    }[case]()
    resp = await node_client.get(path, headers=headers)
    assert resp.status == 401
    assert (await resp.json())["error"]["code"] == "Unauthorized"


async def test_healthz_needs_no_signature(node_client: Client) -> None:
    resp = await node_client.get("/healthz")
    assert resp.status == 200
    payload = await resp.json()
    assert payload["node"] == "node-a"
    assert 0 < payload["disk_free_bytes"] <= payload["disk_total_bytes"]


async def test_put_then_get_round_trips_bytes_and_headers(
    node_client: Client, clock: VersionClock, body: bytes
) -> None:
    version = clock.next()
    resp = await put(
        node_client, body, version, **{"Content-Type": "image/jpeg", "X-Shardgate-Meta-Foo": "bar"}
    )
    assert resp.status == 201
    md5 = hashlib.md5(body).hexdigest()
    created = await resp.json()
    assert (created["size"], created["etag"], created["version"]) == (len(body), md5, version)

    resp = await get(node_client)
    assert resp.status == 200
    assert await resp.read() == body
    assert resp.headers["ETag"] == f'"{md5}"'
    assert resp.headers["Content-Type"] == "image/jpeg"
    assert resp.headers["X-Shardgate-Meta-Foo"] == "bar"
    assert resp.headers[VERSION_HEADER] == version
    modified = parsedate_to_datetime(resp.headers["Last-Modified"]).timestamp()
    assert modified == int(version_to_timestamp(version))

    resp = await get(node_client, "HEAD")
    assert resp.status == 200
    assert resp.headers["Content-Length"] == str(len(body))
    assert resp.headers["ETag"] == f'"{md5}"'
    assert await resp.read() == b""


@pytest.mark.parametrize(
    ("spec", "first", "last"),
    [
        ("bytes=0-99", 0, 99),
        ("bytes=300-549", 300, 549),
        ("bytes=-100", 900, 999),
        ("bytes=990-", 990, 999),
    ],
)
async def test_range_reads(
    node_client: Client, clock: VersionClock, body: bytes, spec: str, first: int, last: int
) -> None:
    assert (await put(node_client, body, clock.next())).status == 201
    resp = await get(node_client, Range=spec)
    assert resp.status == 206
    assert resp.headers["Content-Range"] == f"bytes {first}-{last}/{len(body)}"
    assert await resp.read() == body[first : last + 1]


async def test_unsatisfiable_range_is_416(
    node_client: Client, clock: VersionClock, body: bytes
) -> None:
    assert (await put(node_client, body, clock.next())).status == 201
    resp = await get(node_client, Range="bytes=5000-6000")
    assert resp.status == 416
    assert resp.headers["Content-Range"] == f"bytes */{len(body)}"


async def test_conditional_reads(node_client: Client, clock: VersionClock, body: bytes) -> None:
    assert (await put(node_client, body, clock.next())).status == 201
    md5 = hashlib.md5(body).hexdigest()

    resp = await get(node_client, **{"If-None-Match": f'"{md5}"'})
    assert resp.status == 304
    assert await resp.read() == b""
    resp = await get(node_client, **{"If-Match": '"0123456789abcdef0123456789abcdef"'})
    assert resp.status == 412
    resp = await get(node_client, **{"If-Match": f'"{md5}"'})
    assert resp.status == 200
    assert await resp.read() == body

    resp = await get(node_client, Range="bytes=0-9", **{"If-Range": '"not-the-etag"'})
    assert resp.status == 200
    assert await resp.read() == body
    resp = await get(node_client, Range="bytes=0-9", **{"If-Range": f'"{md5}"'})
    assert resp.status == 206
    assert await resp.read() == body[:10]


@pytest.mark.parametrize("fault", ["wrong-key", "bad-version", "no-bucket"])
async def test_put_with_bad_identity_is_400(
    node_client: Client, clock: VersionClock, fault: str
) -> None:
    path = locate()[2]
    headers = identity(clock.next())
    if fault == "wrong-key":
        headers[KEY_HEADER] = encode_key("another-key")
    elif fault == "bad-version":
        headers[VERSION_HEADER] = "12345"
    else:
        del headers[BUCKET_HEADER]
    resp = await node_client.put(path, data=b"x", headers=signed("PUT", path, headers))
    assert resp.status == 400
    assert (await resp.json())["error"]["code"] == "BadRequest"
    assert (await get(node_client)).status == 404


async def test_older_version_is_superseded(node_client: Client, clock: VersionClock) -> None:
    older, newer = clock.next(), clock.next()
    assert (await put(node_client, b"newer bytes", newer)).status == 201
    resp = await put(node_client, b"older", older)
    assert resp.status == 409
    assert (await resp.json())["error"]["code"] == "Superseded"
    resp = await get(node_client)
    assert (await resp.read(), resp.headers[VERSION_HEADER]) == (b"newer bytes", newer)
    # Replaying the very same version and bytes is idempotent.
    again = await put(node_client, b"newer bytes", newer)
    assert again.status == 201
    assert (await again.json())["version"] == newer


async def test_tombstone_hides_object_and_beats_older_writes(
    node_client: Client, clock: VersionClock, body: bytes
) -> None:
    first, delete_at = clock.next(), clock.next()
    assert (await put(node_client, body, first)).status == 201
    path = locate()[2]
    resp = await node_client.delete(path, headers=signed("DELETE", path, identity(delete_at)))
    assert resp.status == 200
    assert (await resp.json())["tombstone"] is True

    resp = await get(node_client)
    assert resp.status == 404
    assert resp.headers[TOMBSTONE_HEADER] == delete_at
    assert (await put(node_client, body, first)).status == 409


async def test_min_version_newer_than_stored_is_404(
    node_client: Client, clock: VersionClock
) -> None:
    stored, wanted = clock.next(), clock.next()
    assert (await put(node_client, b"abc", stored)).status == 201
    resp = await get(node_client, **{MIN_VERSION_HEADER: wanted})
    assert resp.status == 404
    assert resp.headers[VERSION_HEADER] == stored
    resp = await get(node_client, **{MIN_VERSION_HEADER: stored})
    assert resp.status == 200
    assert await resp.read() == b"abc"


async def test_a_head_at_a_min_version_tells_a_repair_what_a_push_would_send(
    node_client: Client, clock: VersionClock
) -> None:
    # gateway.repairs bounds a push by this size: the version's, 0 for a tombstone.
    stored, wanted, delete_at = clock.next(), clock.next(), clock.next()
    assert (await put(node_client, b"x" * 5000, stored)).status == 201
    resp = await get(node_client, "HEAD", **{MIN_VERSION_HEADER: stored})
    assert (resp.status, resp.headers["Content-Length"], await resp.read()) == (200, "5000", b"")
    resp = await get(node_client, "HEAD", **{MIN_VERSION_HEADER: wanted})
    assert resp.status == 404 and TOMBSTONE_HEADER not in resp.headers
    path = locate()[2]
    resp = await node_client.delete(path, headers=signed("DELETE", path, identity(delete_at)))
    assert resp.status == 200
    resp = await get(node_client, "HEAD", **{MIN_VERSION_HEADER: stored})
    assert (resp.status, resp.headers[TOMBSTONE_HEADER]) == (404, delete_at)


async def test_discard_removes_exactly_that_version(
    node_client: Client, clock: VersionClock
) -> None:
    version, other = clock.next(), clock.next()
    assert (await put(node_client, b"withdraw me", version)).status == 201
    partition, obj_hash, _ = locate()

    async def discard(v: str) -> bool:
        path = version_path(partition, obj_hash, v)
        resp = await node_client.delete(path, headers=signed("DELETE", path))
        assert resp.status == 200
        return bool((await resp.json())["discarded"])

    assert await discard(other) is False
    assert (await get(node_client)).status == 200
    assert await discard(version) is True
    assert (await get(node_client)).status == 404
    assert await discard(version) is False


async def test_partition_listing(node_client: Client, clock: VersionClock, body: bytes) -> None:
    version = clock.next()
    assert (await put(node_client, body, version)).status == 201
    partition, obj_hash, _ = locate()
    path = partition_path(partition)
    resp = await node_client.get(path, headers=signed("GET", path))
    assert resp.status == 200
    listing = await resp.json()
    assert listing["partition"] == partition
    assert listing["objects"] == [
        {
            "hash": obj_hash,
            "bucket": BUCKET,
            "key": KEY,
            "version": version,
            "etag": hashlib.md5(body).hexdigest(),
            "size": len(body),
            "tombstone": False,
        }
    ]
    empty = partition_path((partition + 1) % 2**POWER)
    resp = await node_client.get(empty, headers=signed("GET", empty))
    assert (await resp.json())["objects"] == []

    deleted = clock.next()
    obj = locate()[2]
    await node_client.delete(obj, headers=signed("DELETE", obj, identity(deleted)))
    listing = await (await node_client.get(path, headers=signed("GET", path))).json()
    [entry] = listing["objects"]
    assert (entry["version"], entry["tombstone"], entry["size"]) == (deleted, True, 0)


async def test_metrics_exposition(node_client: Client, clock: VersionClock, body: bytes) -> None:
    assert (await put(node_client, body, clock.next())).status == 201
    resp = await node_client.get("/metrics")
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/plain")
    text = await resp.text()
    assert "shardgate_http_requests_total{" in text
    received = [
        line
        for line in text.splitlines()
        if line.startswith("shardgate_node_received_bytes_total ")
    ]
    assert received == [f"shardgate_node_received_bytes_total {float(len(body))}"]


@pytest.mark.parametrize("store_kind", ["memory"])
async def test_a_version_replaced_before_its_first_byte_is_a_404_not_an_empty_200(
    node_client: Client, clock: VersionClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Versions without block sums are streamed; the store opens the version before any header
    leaves, so one replaced in between is a 404 the gateway fails over on."""
    assert (await put(node_client, b"abc", clock.next())).status == 201

    async def replaced(*args: object) -> AsyncIterator[bytes]:
        raise FileNotFoundError("replaced by a newer commit")
        yield b""

    monkeypatch.setattr(node_client.server.app[STORE], "read", replaced)
    resp = await get(node_client)
    assert resp.status == 404
    assert "replaced while it was read" in (await resp.json())["error"]["message"]
