"""Must-show 4 and reclaiming: a complete request with a bad part list is refused with the S3
error code and changes nothing; abort, a complete that leaves parts out, and deleting or
overwriting a multipart object all take the parts' bytes back off the nodes."""

from __future__ import annotations

import asyncio
import hashlib
import random
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from clusterkit import Api, committed_bytes, md5_hex, metric, nodes_holding

from shardgate.cli.dev import DevCluster

KiB = 1024
MiB = 1024 * KiB
MIN_PART = 5 * MiB
RECEIVED = "shardgate_gateway_received_bytes_total"


def data(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


def multipart_etag(parts: list[bytes]) -> str:
    md5s = b"".join(hashlib.md5(part, usedforsecurity=False).digest() for part in parts)
    return f"{hashlib.md5(md5s, usedforsecurity=False).hexdigest()}-{len(parts)}"


class Uploads:
    """The multipart resource of one gateway; every call answers (status, JSON body)."""

    def __init__(self, api: Api) -> None:
        self.api = api

    async def _call(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        headers = {**self.api.auth, **kwargs.pop("headers", {})}
        async with self.api.session.request(
            method, self.api.url + path, headers=headers, **kwargs
        ) as resp:
            return resp.status, (await resp.json() if resp.status != 204 else None)

    async def initiate(self, bucket: str, key: str) -> str:
        status, body = await self._call("POST", "/v1/uploads", json={"bucket": bucket, "key": key})
        assert status == 201, body
        return str(body["upload_id"])

    async def part(
        self, upload_id: str, number: int, body: object, size: int | None = None
    ) -> tuple[int, Any]:
        headers = {} if size is None else {"Content-Length": str(size)}
        return await self._call(
            "PUT", f"/v1/uploads/{upload_id}/parts/{number}", data=body, headers=headers
        )

    async def progress(self, upload_id: str) -> tuple[int, Any]:
        return await self._call("GET", f"/v1/uploads/{upload_id}")

    async def listed(self, bucket: str) -> list[str]:
        status, body = await self._call("GET", "/v1/uploads", params={"bucket": bucket})
        assert status == 200, body
        return [upload["upload_id"] for upload in body["uploads"]]

    async def complete(self, upload_id: str, parts: list[tuple[int, str]]) -> tuple[int, Any]:
        listed = [{"part_number": n, "etag": etag} for n, etag in parts]
        return await self._call("POST", f"/v1/uploads/{upload_id}/complete", json={"parts": listed})

    async def abort(self, upload_id: str) -> tuple[int, Any]:
        return await self._call("DELETE", f"/v1/uploads/{upload_id}")


async def upload_parts(uploads: Uploads, upload_id: str, bodies: list[bytes]) -> list[str]:
    """Send parts 1..n; their ETags."""
    etags = []
    for number, body in enumerate(bodies, start=1):
        status, answer = await uploads.part(upload_id, number, body)
        assert status == 200, answer
        assert answer == {"part_number": number, "size": len(body), "etag": answer["etag"]}
        etags.append(answer["etag"])
    return etags


@pytest.fixture
def api(shared_cluster: DevCluster, session: aiohttp.ClientSession) -> Api:
    return Api(session, shared_cluster.url, shared_cluster.api_key)


@pytest.fixture
def uploads(api: Api) -> Uploads:
    return Uploads(api)


async def test_bad_part_lists_are_refused_and_change_nothing_then_abort_reclaims(
    api: Api, uploads: Uploads, shared_cluster: DevCluster
) -> None:
    await api.create_bucket("refusals")
    before = committed_bytes(shared_cluster)
    upload_id = await uploads.initiate("refusals", "k.bin")
    bodies = [data(MIN_PART, 1), data(MiB, 2), data(MIN_PART, 3), data(100 * KiB, 4)]
    e1, e2, e3, e4 = await upload_parts(uploads, upload_id, bodies)
    assert committed_bytes(shared_cluster) == before + 3 * sum(map(len, bodies))
    status, snapshot = await uploads.progress(upload_id)
    assert status == 200

    refusals = {
        "missing part": ([(1, e1), (3, e3), (5, e4)], "InvalidPart"),
        "wrong etag": ([(1, e1), (3, "0" * 32), (4, e4)], "InvalidPart"),
        "another part's etag": ([(1, e1), (3, e4)], "InvalidPart"),
        "out of order": ([(1, e1), (4, e4), (3, e3)], "InvalidPartOrder"),
        "duplicated part": ([(1, e1), (1, e1), (3, e3), (4, e4)], "InvalidPartOrder"),
        "too small middle part": ([(1, e1), (2, e2), (3, e3), (4, e4)], "EntityTooSmall"),
        "no parts": ([], "InvalidPartOrder"),
    }
    for case, (parts, code) in refusals.items():
        status, body = await uploads.complete(upload_id, parts)
        assert (status, body["error"]["code"]) == (400, code), case
        assert await uploads.progress(upload_id) == (200, snapshot), case
        assert await uploads.listed("refusals") == [upload_id], case
        assert (await api.get_sha256("refusals", "k.bin"))[0] == 404, case
        assert committed_bytes(shared_cluster) == before + 3 * sum(map(len, bodies)), case
    status, body = await uploads.complete("f" * 32, [(1, e1)])
    assert (status, body["error"]["code"]) == (404, "NoSuchUpload")

    assert (await uploads.abort(upload_id))[0] == 204
    assert committed_bytes(shared_cluster) == before
    for etag, body in zip((e1, e2, e3, e4), bodies, strict=True):
        assert nodes_holding(shared_cluster, etag, len(body)) == set()
    assert await uploads.listed("refusals") == []
    for status, body in [
        await uploads.progress(upload_id),
        await uploads.complete(upload_id, [(1, e1), (3, e3), (4, e4)]),
        await uploads.part(upload_id, 5, b"late"),
        await uploads.abort(upload_id),
    ]:
        assert (status, body["error"]["code"]) == (404, "NoSuchUpload")
    assert (await api.get_sha256("refusals", "k.bin"))[0] == 404
    assert committed_bytes(shared_cluster) == before


async def test_complete_publishes_listed_parts_and_reclaims_the_rest(
    api: Api, uploads: Uploads, shared_cluster: DevCluster
) -> None:
    await api.create_bucket("subset")
    before = committed_bytes(shared_cluster)
    upload_id = await uploads.initiate("subset", "s.bin")
    bodies = [data(MIN_PART, 5), data(MiB, 6), data(MIN_PART + 1, 7), data(777, 8)]
    e1, e2, e3, e4 = await upload_parts(uploads, upload_id, bodies)
    status, record = await uploads.complete(upload_id, [(1, e1), (3, f'"{e3}"'), (4, e4)])
    assert status == 201, record
    chosen = [bodies[0], bodies[2], bodies[3]]
    assert record["size"] == sum(map(len, chosen))
    assert record["etag"] == multipart_etag(chosen)
    assert nodes_holding(shared_cluster, e2, MiB) == set()
    assert committed_bytes(shared_cluster) == before + 3 * record["size"]
    whole = b"".join(chosen)
    assert await api.get_sha256("subset", "s.bin") == (
        200,
        hashlib.sha256(whole).hexdigest(),
        len(whole),
    )
    url = api.object_url("subset", "s.bin")
    async with api.session.head(url, headers=api.auth) as resp:
        assert resp.status == 200
        assert resp.headers["ETag"] == f'"{record["etag"]}"'
        assert resp.headers["Content-Length"] == str(len(whole))
    async with api.session.get(url, headers={**api.auth, "Range": f"bytes={len(whole)}-"}) as r:
        assert r.status == 416
        assert r.headers["Content-Range"] == f"bytes */{len(whole)}"
    assert await uploads.listed("subset") == []
    status, body = await uploads.complete(upload_id, [(1, e1), (3, e3), (4, e4)])
    assert (status, body["error"]["code"]) == (404, "NoSuchUpload")


async def _multipart_object(uploads: Uploads, bucket: str, key: str, seed: int) -> list[bytes]:
    upload_id = await uploads.initiate(bucket, key)
    bodies = [data(MIN_PART, seed), data(2 * MiB, seed + 1)]
    etags = await upload_parts(uploads, upload_id, bodies)
    status, record = await uploads.complete(upload_id, list(enumerate(etags, start=1)))
    assert status == 201, record
    return bodies


def _holders(cluster: DevCluster, bodies: list[bytes]) -> list[set[str]]:
    md5 = [md5_hex(body) for body in bodies]
    return [nodes_holding(cluster, etag, len(body)) for etag, body in zip(md5, bodies, strict=True)]


async def test_deleting_or_overwriting_a_multipart_object_reclaims_its_parts(
    api: Api, uploads: Uploads, shared_cluster: DevCluster
) -> None:
    await api.create_bucket("reclaim")
    nodes = set(shared_cluster.node_ids)
    before = committed_bytes(shared_cluster)

    deleted = await _multipart_object(uploads, "reclaim", "deleted.bin", seed=10)
    assert _holders(shared_cluster, deleted) == [nodes, nodes]
    async with api.session.delete(api.object_url("reclaim", "deleted.bin"), headers=api.auth) as r:
        assert r.status == 204
    assert _holders(shared_cluster, deleted) == [set(), set()]
    assert committed_bytes(shared_cluster) == before

    replaced = await _multipart_object(uploads, "reclaim", "put-over.bin", seed=20)
    status, _ = await api.put("reclaim", "put-over.bin", b"plain bytes now")
    assert status == 201
    assert _holders(shared_cluster, replaced) == [set(), set()]
    assert await api.get_sha256("reclaim", "put-over.bin") == (
        200,
        hashlib.sha256(b"plain bytes now").hexdigest(),
        15,
    )

    first = await _multipart_object(uploads, "reclaim", "twice.bin", seed=30)
    second = await _multipart_object(uploads, "reclaim", "twice.bin", seed=40)
    assert _holders(shared_cluster, first) == [set(), set()]
    assert _holders(shared_cluster, second) == [nodes, nodes]
    whole = b"".join(second)
    assert (await api.get_sha256("reclaim", "twice.bin"))[1] == hashlib.sha256(whole).hexdigest()


async def held_back(body: bytes, first: int, go: asyncio.Event) -> AsyncIterator[bytes]:
    """The first `first` bytes at once, the rest after `go` is set."""
    yield body[:first]
    await go.wait()
    yield body[first:]


async def test_a_part_still_arriving_when_the_upload_is_aborted_leaves_nothing(
    api: Api, uploads: Uploads, shared_cluster: DevCluster
) -> None:
    await api.create_bucket("racing")
    before = committed_bytes(shared_cluster)
    upload_id = await uploads.initiate("racing", "late.bin")
    body = data(2 * MiB, 50)
    go = asyncio.Event()
    received = await metric(api.session, api.url, RECEIVED)
    sending = asyncio.create_task(
        uploads.part(upload_id, 1, held_back(body, MiB, go), size=len(body))
    )
    # the gateway is storing the part
    while await metric(api.session, api.url, RECEIVED) < received + 256 * KiB:
        assert not sending.done()
        await asyncio.sleep(0.02)
    assert (await uploads.abort(upload_id))[0] == 204
    go.set()
    status, answer = await sending
    etag = md5_hex(body)
    assert nodes_holding(shared_cluster, etag, len(body)) == set()
    assert committed_bytes(shared_cluster) == before
    assert (status, answer.get("error", {}).get("code")) == (404, "NoSuchUpload"), answer


async def test_completing_over_a_plain_object_reclaims_the_plain_replicas(
    api: Api, uploads: Uploads, shared_cluster: DevCluster
) -> None:
    await api.create_bucket("overplain")
    plain = data(3 * MiB, 60)
    status, _ = await api.put("overplain", "o.bin", plain)
    assert status == 201
    etag = md5_hex(plain)
    assert nodes_holding(shared_cluster, etag, len(plain)) == set(shared_cluster.node_ids)
    await _multipart_object(uploads, "overplain", "o.bin", seed=70)
    assert nodes_holding(shared_cluster, etag, len(plain)) == set()
