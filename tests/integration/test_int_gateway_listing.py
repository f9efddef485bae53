"""Must-show: listings page through thousands of keys in UTF-8 byte order, every key once, even
while new keys are written between pages; and API keys are held to their rights and buckets,
and stop working once revoked."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import pytest
from clusterkit import Api, create_key

from shardgate.cli.dev import DevCluster

PER_PREFIX = 1250
# Keys whose code-point order differs from naive expectations: upper before lower, ASCII before
# Latin-1 before CJK before astral; byte order and code-point order agree for UTF-8.
ODD_KEYS = ["a/Zebra", "a/zebra", "a/é", "a/ñ/x", "a/中文", "a/😀", "a/~tilde", "a/ space"]


async def put_all(api: Api, bucket: str, keys: list[str], concurrency: int = 32) -> None:
    gate = asyncio.Semaphore(concurrency)

    async def one(key: str) -> None:
        async with gate:
            status, body = await api.put(bucket, key, key.encode())
            assert status == 201, (key, body)

    await asyncio.gather(*(one(key) for key in keys))


async def page(
    api: Api, bucket: str, headers: dict[str, str] | None = None, **query: str
) -> tuple[int, dict[str, Any]]:
    async with api.session.get(
        f"{api.url}/v1/objects/{bucket}",
        params=query,
        headers=api.auth if headers is None else headers,
    ) as resp:
        return resp.status, await resp.json()


async def list_all(api: Api, bucket: str, **query: str) -> tuple[list[str], int]:
    """Every key, following `next`; and the number of pages it took."""
    keys: list[str] = []
    after: str | None = None
    pages = 0
    while True:
        params = dict(query, **({"after": after} if after else {}))
        status, body = await page(api, bucket, **params)
        assert status == 200, body
        pages += 1
        keys += [o["key"] for o in body["objects"]]
        after = body["next"]
        if after is None:
            return keys, pages


def byte_order(keys: list[str]) -> list[str]:
    return sorted(keys, key=lambda k: k.encode("utf-8"))


@pytest.fixture
async def filled(
    shared_cluster: DevCluster, session: aiohttp.ClientSession
) -> tuple[Api, list[str]]:
    """2,500 keys under a/ and b/ (plus a few odd ones), written once per module."""
    api = Api(session, shared_cluster.url, shared_cluster.api_key)
    bucket = "listing-many"
    keys = [f"{p}/{i:05d}" for p in "ab" for i in range(PER_PREFIX)] + ODD_KEYS
    status, _ = await page(api, bucket, limit="1")
    if status == 404:
        await api.create_bucket(bucket)
        started = time.perf_counter()
        await put_all(api, bucket, keys)
        print(f"\nput {len(keys)} objects in {time.perf_counter() - started:.1f}s")
    return api, keys


async def test_pages_hold_every_key_once_in_byte_order(filled: tuple[Api, list[str]]) -> None:
    api, keys = filled
    listed, pages = await list_all(api, "listing-many", limit="1000")
    assert pages == 3
    assert listed == byte_order(keys)
    assert len(set(listed)) == len(listed) == len(keys)

    status, body = await page(api, "listing-many", limit="1000")
    assert status == 200 and len(body["objects"]) == 1000 and body["next"] is not None
    first = body["objects"][0]
    assert {"bucket", "key", "size", "etag", "content_type", "version", "replicas"} <= set(first)
    assert first["size"] == len(first["key"].encode())

    b_keys, b_pages = await list_all(api, "listing-many", prefix="b/", limit="1000")
    assert b_pages == 2
    assert b_keys == [k for k in byte_order(keys) if k.startswith("b/")]
    assert len(b_keys) == PER_PREFIX

    odd, _ = await list_all(api, "listing-many", prefix="a/", limit="3")
    assert odd == [k for k in byte_order(keys) if k.startswith("a/")]
    assert (await list_all(api, "listing-many", prefix="a/中"))[0] == ["a/中文"]
    assert (await list_all(api, "listing-many", prefix="c/"))[0] == []


async def test_concurrent_writes_never_duplicate_or_skip_a_key(
    filled: tuple[Api, list[str]],
) -> None:
    api, keys = filled
    existing = byte_order(keys)
    listed: list[str] = []
    written: list[str] = []
    try:
        await _list_while_writing(api, listed, written)
    finally:
        for key in written:  # leave the module's bucket as the other tests expect it
            async with api.session.delete(api.object_url("listing-many", key), headers=api.auth):
                pass
    assert len(listed) == len(set(listed)), "a key came twice"
    assert listed == byte_order(listed), "pages out of order"
    known = set(existing)
    assert [k for k in listed if k in known] == existing, "an existing key was skipped"
    assert set(listed) - set(existing) <= set(written)
    assert len(written) >= 3 * 6


async def _list_while_writing(api: Api, listed: list[str], written: list[str]) -> None:
    after: str | None = None
    round_ = 0
    while True:
        params = {"limit": "1000", **({"after": after} if after else {})}
        # New keys land all over the key space while each page is read: before the cursor,
        # right after it, and at the far end.
        fresh = [
            f"a/00000.new{round_}",
            f"a/00999.new{round_}",
            f"a/01000.new{round_}",
            f"b/00500.new{round_}",
            f"b/99999.new{round_}",
            f"c/new{round_}",
        ]
        written += fresh
        writes = asyncio.create_task(put_all(api, "listing-many", fresh, concurrency=6))
        status, body = await page(api, "listing-many", **params)
        await writes
        assert status == 200
        listed += [o["key"] for o in body["objects"]]
        after = body["next"]
        round_ += 1
        if after is None:
            return


async def test_bad_listing_arguments(filled: tuple[Api, list[str]]) -> None:
    api, _ = filled
    for query in ({"limit": "0"}, {"limit": "1001"}, {"limit": "ten"}, {"after": "zzzz"}):
        status, body = await page(api, "listing-many", **query)
        assert (status, body["error"]["code"]) == (400, "InvalidArgument"), query
    status, body = await page(api, "listing-nope")
    assert (status, body["error"]["code"]) == (404, "NoSuchBucket")


@pytest.mark.parametrize("cursor", ["%%%", "!!!"])
async def test_garbled_cursor_is_refused(filled: tuple[Api, list[str]], cursor: str) -> None:
    api, _ = filled
    status, body = await page(api, "listing-many", after=cursor, limit="2")
    assert (status, body.get("error", {}).get("code")) == (400, "InvalidArgument"), body


async def scoped_key(api: Api, rights: list[str], buckets: list[str] | None) -> dict[str, Any]:
    body = await create_key(api, "listing-test", rights, buckets)
    assert body["key"] and body["id"]
    return body


async def test_bucket_scoped_read_key_and_revocation(
    shared_cluster: DevCluster, session: aiohttp.ClientSession
) -> None:
    api = Api(session, shared_cluster.url, shared_cluster.api_key)
    for bucket in ("listing-x", "listing-y"):
        await api.create_bucket(bucket)
        assert (await api.put(bucket, "k.txt", b"hello"))[0] == 201
    reader = await scoped_key(api, ["read"], ["listing-x"])
    auth = {"Authorization": f"Bearer {reader['key']}"}

    status, body = await page(api, "listing-x", headers=auth)
    assert status == 200 and [o["key"] for o in body["objects"]] == ["k.txt"]
    async with session.get(api.object_url("listing-x", "k.txt"), headers=auth) as resp:
        assert resp.status == 200 and await resp.read() == b"hello"
    status, body = await page(api, "listing-y", headers=auth)
    assert (status, body["error"]["code"]) == (403, "AccessDenied")
    async with session.get(api.object_url("listing-y", "k.txt"), headers=auth) as resp:
        assert resp.status == 403
    async with session.put(api.object_url("listing-x", "w.txt"), data=b"x", headers=auth) as resp:
        assert resp.status == 403
    async with session.get(f"{api.url}/v1/buckets", headers=auth) as resp:
        assert [b["name"] for b in (await resp.json())["buckets"]] == ["listing-x"]
    async with session.get(f"{api.url}/v1/keys", headers=auth) as resp:
        assert resp.status == 403

    async with session.get(f"{api.url}/v1/keys", headers=api.auth) as resp:
        listed = {k["id"]: k for k in (await resp.json())["keys"]}
    assert listed[reader["id"]]["buckets"] == ["listing-x"]
    assert "key" not in listed[reader["id"]], "the secret is shown once, never listed"

    async with session.delete(f"{api.url}/v1/keys/{reader['id']}", headers=api.auth) as resp:
        assert resp.status == 204
    revoked_at = time.monotonic()
    while True:
        status, body = await page(api, "listing-x", headers=auth)
        if status != 200 or time.monotonic() - revoked_at > 5:
            break
        await asyncio.sleep(0.05)
    assert (status, body["error"]["code"]) == (401, "Unauthorized")
    print(f"\nrevocation took effect after {time.monotonic() - revoked_at:.2f}s")
    async with session.delete(f"{api.url}/v1/keys/{reader['id']}", headers=api.auth) as resp:
        assert resp.status == 404


async def test_bucket_scoped_admin_stays_in_its_bucket(
    shared_cluster: DevCluster, session: aiohttp.ClientSession
) -> None:
    api = Api(session, shared_cluster.url, shared_cluster.api_key)
    await api.create_bucket("listing-mine")
    await api.create_bucket("listing-theirs")
    scoped = await scoped_key(api, ["admin"], ["listing-mine"])
    auth = {"Authorization": f"Bearer {scoped['key']}"}
    answers = {}
    async with session.put(
        f"{api.url}/v1/buckets/listing-theirs", json={"public_read": True}, headers=auth
    ) as resp:
        answers["re-policy other bucket"] = resp.status
    async with session.put(f"{api.url}/v1/buckets/listing-new", headers=auth) as resp:
        answers["create other bucket"] = resp.status
    async with session.post(
        f"{api.url}/v1/keys",
        json={"name": "escalated", "rights": ["read", "write"], "buckets": None},
        headers=auth,
    ) as resp:
        answers["mint all-bucket key"] = resp.status
    async with session.delete(f"{api.url}/v1/buckets/listing-theirs", headers=auth) as resp:
        answers["delete other bucket"] = resp.status
    assert answers == dict.fromkeys(answers, 403)
