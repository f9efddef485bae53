"""Must-show: presigned direct uploads against real processes. The bytes go client -> node (PUT
or a browser's form POST), never through the gateway; nothing is visible until the commit, which
verifies on the node and leaves the object on three replicas; a slow upload started before its
token expired finishes; browser preflights to the node follow the bucket's CORS origins; and
commit refuses, dropping the pending bytes, what the client misstates or the bucket forbids."""

from __future__ import annotations

import asyncio
import hashlib
import random
import string
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
from clusterkit import (
    Api,
    Body,
    cluster_ring,
    kept,
    metric,
    node_dir,
    presign,
    put_bucket,
    replica_versions,
)
from multidict import CIMultiDictProxy

from ring import object_hash, partition_of
from shardgate.cli.dev import DevCluster
from shardgate.internal_api import pending_path
from shardgate.signing import sign_request
from shardgate.versions import VersionClock

KiB = 1024
MiB = 1024 * KiB
ORIGIN = "https://app.example.com"
OTHER_ORIGIN = "https://evil.example.net"
RECEIVED = "shardgate_gateway_received_bytes_total"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


async def commit(api: Api, bucket: str, key: str, **body: Any) -> tuple[int, dict[str, Any]]:
    async with api.session.post(
        f"{api.object_url(bucket, key)}/commit", json=body, headers=api.auth
    ) as resp:
        return resp.status, await resp.json()


async def upload(
    session: aiohttp.ClientSession, url: str, data: Any, **headers: str
) -> tuple[int, dict[str, Any], CIMultiDictProxy[str]]:
    async with session.put(url, data=data, headers=headers) as resp:
        return resp.status, await resp.json(), resp.headers


def browser_form(token: str | None, data: bytes, content_type: str) -> tuple[bytes, str]:
    """A multipart/form-data body byte for byte as Chrome builds it for <input type=file>."""
    boundary = "----WebKitFormBoundary" + "".join(
        random.choices(string.ascii_letters + string.digits, k=16)
    )
    body = b""
    if token is not None:
        body += (
            f'--{boundary}\r\nContent-Disposition: form-data; name="token"\r\n\r\n{token}\r\n'
        ).encode()
    body += (
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="file"; filename="x.bin"\r\n'
        f"Content-Type: {content_type}\r\n"
        "\r\n"
    ).encode()
    body += data + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


async def throttled(body: Body, pause: float) -> AsyncIterator[bytes]:
    async for chunk in body.chunks():
        yield chunk
        await asyncio.sleep(pause)


@pytest.fixture
def api(shared_cluster: DevCluster, session: aiohttp.ClientSession) -> Api:
    return Api(session, shared_cluster.url, shared_cluster.api_key)


@pytest.fixture(scope="module", autouse=True)
def buckets(shared_cluster: DevCluster) -> None:
    async def create() -> None:
        async with aiohttp.ClientSession() as session:
            api = Api(session, shared_cluster.url, shared_cluster.api_key)
            await put_bucket(api, "direct")
            await put_bucket(api, "direct-cors", cors_origins=[ORIGIN])

    asyncio.run(create())


async def test_direct_put_bypasses_the_gateway_and_commits_to_three_replicas(
    api: Api, shared_cluster: DevCluster
) -> None:
    body = Body(50 * MiB, seed=501)
    digest = body.sha256()
    before = await metric(api.session, api.url, RECEIVED)

    signed = await presign(
        api, "direct", "big/50m.bin", size=body.size, sha256=digest, expires_in=600
    )
    assert signed.method == "PUT" and signed.upload_id and signed.fields["token"] == signed.token
    assert not signed.url.startswith(api.url)
    assert signed.expires > time.time() + 500
    status, node_answer, _ = await upload(
        api.session, signed.url, body.chunks(), **{"Content-Length": str(body.size)}
    )
    assert status == 201, node_answer
    assert node_answer["upload_id"] == signed.upload_id
    assert (node_answer["size"], node_answer["sha256"]) == (body.size, digest)

    # No upload_id: the latest presigned upload of this key is the one committed.
    status, stored = await commit(api, "direct", "big/50m.bin", size=body.size, sha256=digest)
    assert status == 201, stored
    assert await metric(api.session, api.url, RECEIVED) == before
    assert (stored["size"], stored["etag"]) == (body.size, node_answer["etag"])
    assert len(set(stored["replicas"])) == 3

    assert await api.get_sha256("direct", "big/50m.bin") == (200, digest, body.size)
    ring = cluster_ring(shared_cluster)
    on_nodes = await replica_versions(
        api.session, ring, shared_cluster.cluster_secret, "direct", "big/50m.bin"
    )
    assert sorted(on_nodes) == sorted(stored["replicas"])
    assert set(on_nodes.values()) == {(stored["version"], stored["etag"])}

    # A second commit of the same upload is the same object, not a new version.
    again = await commit(
        api, "direct", "big/50m.bin", size=body.size, md5=stored["etag"], upload_id=signed.upload_id
    )
    assert again == (201, stored)


async def test_a_commit_the_gateway_never_recorded_is_retried_onto_a_newer_version(
    api: Api, shared_cluster: DevCluster
) -> None:
    """The nodes published an upload as V1 and the gateway stopped before its catalog recorded
    it (done here by hand, as its placement does). The client's retried commit records a newer
    version, and every replica moves to it with the same bytes rather than staying at V1,
    which no read at the catalog's version would take."""
    key = "retried/commit.bin"
    body = Body(3 * MiB, seed=77)
    signed = await presign(api, "direct", key, size=body.size)
    status, answer, _ = await upload(
        api.session, signed.url, body.chunks(), **{"Content-Length": str(body.size)}
    )
    assert status == 201, answer
    assert signed.upload_id is not None
    ring = cluster_ring(shared_cluster)
    secret = shared_cluster.cluster_secret.encode()
    source = next(node for node in ring.nodes if signed.url.startswith(node.url + "/"))
    path = pending_path(signed.upload_id)
    async with api.session.get(source.url + path, headers=sign_request(secret, "GET", path)) as r:
        received = await r.json()
    first = VersionClock().next()
    holders = [source, *(node for node in ring.nodes if node.id in received["copies"])]
    for node in holders:
        publish = pending_path(signed.upload_id, "publish")
        request: dict[str, Any] = {"version": first}
        if node != source:
            request.update({k: received[k] for k in ("size", "etag", "blocks_digest")})
        headers = sign_request(secret, "POST", publish)
        async with api.session.post(node.url + publish, json=request, headers=headers) as r:
            assert (r.status, (await r.json())["version"]) == (201, first)

    status, stored = await commit(
        api, "direct", key, size=body.size, sha256=body.sha256(), upload_id=signed.upload_id
    )
    assert status == 201, stored
    assert stored["version"] > first
    assert await api.get_sha256("direct", key) == (200, body.sha256(), body.size)
    on_nodes = await replica_versions(
        api.session, ring, shared_cluster.cluster_secret, "direct", key
    )
    assert sorted(on_nodes) == sorted(stored["replicas"])
    assert set(on_nodes.values()) == {(stored["version"], stored["etag"])}


@pytest.mark.parametrize("token_in_url", [True, False], ids=["url-and-field", "field-only"])
async def test_browser_form_post_to_the_node(
    api: Api, shared_cluster: DevCluster, token_in_url: bool
) -> None:
    data = Body(5 * MiB, seed=502).bytes()
    key = f"form/{token_in_url}.bin"
    signed = await presign(api, "direct", key, max_size=8 * MiB)
    url = signed.url if token_in_url else signed.url.split("?", 1)[0]
    form, content_type = browser_form(signed.fields["token"], data, "application/octet-stream")
    before = await metric(api.session, api.url, RECEIVED)

    async with api.session.post(url, data=form, headers={"Content-Type": content_type}) as resp:
        node_answer = await resp.json()
        assert resp.status == 201, node_answer
    assert node_answer["size"] == len(data)
    assert node_answer["etag"] == hashlib.md5(data).hexdigest()
    assert node_answer["sha256"] is None  # hashed only where asked: bound, or stated at commit

    sha256 = hashlib.sha256(data).hexdigest()
    status, stored = await commit(
        api, "direct", key, size=len(data), sha256=sha256, upload_id=signed.upload_id
    )
    assert status == 201, stored
    assert (stored["content_type"], stored["etag"], stored["sha256"]) == (
        "application/octet-stream",
        node_answer["etag"],
        sha256,
    )
    assert await metric(api.session, api.url, RECEIVED) == before
    status, digest, size = await api.get_sha256("direct", key)
    assert (status, digest, size) == (200, hashlib.sha256(data).hexdigest(), len(data))
    on_nodes = await replica_versions(
        api.session, cluster_ring(shared_cluster), shared_cluster.cluster_secret, "direct", key
    )
    assert set(on_nodes.values()) == {(stored["version"], stored["etag"])} and len(on_nodes) == 3


async def test_form_without_a_token_or_file_is_refused(api: Api) -> None:
    signed = await presign(api, "direct", "form/none.bin")
    bare = signed.url.split("?", 1)[0]
    form, content_type = browser_form(None, b"data", "application/octet-stream")
    async with api.session.post(bare, data=form, headers={"Content-Type": content_type}) as resp:
        assert resp.status == 403
        assert (await resp.json())["error"]["reason"] == "missing"
    only_token = (
        f'--b\r\nContent-Disposition: form-data; name="token"\r\n\r\n{signed.token}\r\n--b--\r\n'
    )
    headers = {"Content-Type": "multipart/form-data; boundary=b"}
    async with api.session.post(bare, data=only_token.encode(), headers=headers) as resp:
        assert resp.status == 400
        assert (await resp.json())["error"]["code"] == "BadRequest"


async def test_slow_upload_started_before_expiry_finishes_and_commits(api: Api) -> None:
    body = Body(20 * MiB, seed=503)
    slow = await presign(api, "direct", "slow/20m.bin", expires_in=2)
    late = await presign(api, "direct", "slow/late.bin", expires_in=2)
    assert slow.expires <= time.time() + 2

    started = time.monotonic()
    status, node_answer, _ = await upload(api.session, slow.url, throttled(body, pause=0.17))
    assert status == 201, node_answer
    assert time.monotonic() - started > 3.0
    assert time.time() > slow.expires + 1  # the token had expired well before the last byte
    status, stored = await commit(
        api, "direct", "slow/20m.bin", size=body.size, sha256=body.sha256()
    )
    assert status == 201, stored
    assert await api.get_sha256("direct", "slow/20m.bin") == (200, body.sha256(), body.size)

    status, refused, _ = await upload(api.session, late.url, b"too late")
    assert (status, refused["error"]["code"]) == (403, "InvalidToken")
    assert refused["error"]["reason"] == "expired"


async def test_uncommitted_upload_is_invisible(api: Api, shared_cluster: DevCluster) -> None:
    key = "pending/unseen.txt"
    signed = await presign(api, "direct", key, content_type="text/plain")
    status, node_answer, _ = await upload(
        api.session, signed.url, b"not yet", **{"Content-Type": "text/plain"}
    )
    assert status == 201, node_answer
    assert (node_dir(shared_cluster, signed.url) / "pending" / f"{signed.upload_id}.data").exists()

    async with api.session.get(api.object_url("direct", key), headers=api.auth) as resp:
        assert resp.status == 404
        assert (await resp.json())["error"]["code"] == "NoSuchKey"
    async with api.session.head(api.object_url("direct", key), headers=api.auth) as resp:
        assert resp.status == 404
    listing_url = f"{api.url}/v1/objects/direct?prefix=pending/"
    async with api.session.get(listing_url, headers=api.auth) as resp:
        assert resp.status == 200
        assert (await resp.json())["objects"] == []
    async with api.session.post(
        f"{api.url}/v1/presign",
        json={"bucket": "direct", "key": key, "method": "GET"},
        headers=api.auth,
    ) as resp:
        assert resp.status == 404
        assert (await resp.json())["error"]["code"] == "NoSuchKey"

    # Committed, it shows everywhere, the presigned GET included.
    status, stored = await commit(api, "direct", key, size=7, md5=node_answer["etag"])
    assert status == 201, stored
    reader = await presign(api, "direct", key, method="GET", expires_in=60)
    assert reader.upload_id is None and reader.fields == {}
    async with api.session.get(reader.url) as resp:
        assert resp.status == 200
        assert await resp.read() == b"not yet"
        assert resp.headers["X-Shardgate-Version"] == stored["version"]


async def test_node_preflight_and_upload_follow_bucket_origins(api: Api) -> None:
    signed = await presign(api, "direct-cors", "cors/cat.png", content_type="image/png")
    preflight = {
        "Access-Control-Request-Method": "PUT",
        "Access-Control-Request-Headers": "content-type",
    }

    async with api.session.options(signed.url, headers={**preflight, "Origin": ORIGIN}) as resp:
        assert resp.status == 204, await resp.text()
        assert resp.headers["Access-Control-Allow-Origin"] == ORIGIN
        assert "PUT" in resp.headers["Access-Control-Allow-Methods"]
        assert resp.headers["Access-Control-Allow-Headers"].lower() == "content-type"
        assert "Origin" in resp.headers["Vary"]
    async with api.session.options(
        signed.url, headers={**preflight, "Origin": OTHER_ORIGIN}
    ) as resp:
        assert resp.status == 403
        assert "Access-Control-Allow-Origin" not in resp.headers

    # A refusal to the allowed origin carries ACAO too, so the page can read why.
    status, refused, headers = await upload(
        api.session, signed.url, b"text", Origin=ORIGIN, **{"Content-Type": "text/plain"}
    )
    assert (status, refused["error"]["code"]) == (415, "UnsupportedMediaType")
    assert headers["Access-Control-Allow-Origin"] == ORIGIN

    status, node_answer, headers = await upload(
        api.session, signed.url, PNG, Origin=ORIGIN, **{"Content-Type": "image/png"}
    )
    assert status == 201, node_answer
    assert headers["Access-Control-Allow-Origin"] == ORIGIN

    other = await presign(api, "direct-cors", "cors/dog.png", content_type="image/png")
    status, _, headers = await upload(
        api.session, other.url, PNG, Origin=OTHER_ORIGIN, **{"Content-Type": "image/png"}
    )
    assert status == 201  # no CORS on the server side stops a non-browser client...
    assert "Access-Control-Allow-Origin" not in headers  # ...but a browser would not read it


@dataclass(frozen=True)
class CommitFault:
    statement: dict[str, Any]  # overrides of the honest commit body
    policy: dict[str, Any]  # the bucket's policy, changed between upload and commit
    data: bytes
    content_type: str
    status: int
    code: str


COMMIT_FAULTS = {
    "size-differs": CommitFault({"size": 3}, {}, b"hello", "text/plain", 400, "IncompleteBody"),
    "md5-differs": CommitFault({"md5": "0" * 32}, {}, b"hello", "text/plain", 400, "BadDigest"),
    "sha256-differs": CommitFault(
        {"sha256": "0" * 64}, {}, b"hello", "text/plain", 400, "BadDigest"
    ),
    "type-not-allowed-now": CommitFault(
        {}, {"allowed_types": ["image/*"]}, b"hello", "text/plain", 415, "UnsupportedMediaType"
    ),
    "too-large-now": CommitFault(
        {}, {"max_object_size": 4}, b"hello", "text/plain", 413, "EntityTooLarge"
    ),
    "magic-bytes": CommitFault(
        {}, {}, b"not a png at all", "image/png", 415, "UnsupportedMediaType"
    ),
}


@pytest.mark.parametrize("name", COMMIT_FAULTS)
async def test_failed_commit_check_drops_the_upload(
    api: Api, shared_cluster: DevCluster, name: str
) -> None:
    fault, bucket = COMMIT_FAULTS[name], f"commit-{name}"
    await put_bucket(api, bucket, allowed_types=[], max_object_size=None)
    key = "faults/object"
    signed = await presign(api, bucket, key, content_type=fault.content_type)
    status, node_answer, _ = await upload(
        api.session, signed.url, fault.data, **{"Content-Type": fault.content_type}
    )
    assert status == 201, node_answer
    if fault.policy:
        await put_bucket(api, bucket, **fault.policy)

    honest = {"size": len(fault.data), "md5": hashlib.md5(fault.data).hexdigest()}
    status, refused = await commit(api, bucket, key, **{**honest, **fault.statement})
    assert (status, refused["error"]["code"]) == (fault.status, fault.code), refused
    assert kept(shared_cluster, signed.url, signed.upload_id) == []
    # Dropped on the node: an honest retry finds nothing to commit, and nothing is visible.
    status, retry = await commit(api, bucket, key, **honest)
    assert (status, retry["error"]["code"]) == (404, "NoSuchUpload")
    async with api.session.get(api.object_url(bucket, key), headers=api.auth) as resp:
        assert resp.status == 404


async def test_commit_without_an_upload(api: Api) -> None:
    honest = {"size": 5, "md5": hashlib.md5(b"hello").hexdigest()}
    status, refused = await commit(api, "direct", "never/presigned", **honest)
    assert (status, refused["error"]["code"]) == (404, "NoSuchUpload")

    signed = await presign(api, "direct", "never/uploaded")
    status, refused = await commit(api, "direct", "never/uploaded", **honest)
    assert (status, refused["error"]["code"]) == (404, "NoSuchUpload")
    # Another key's upload id does not commit this key.
    other = {**honest, "upload_id": signed.upload_id}
    status, refused = await commit(api, "direct", "never/presigned", **other)
    assert (status, refused["error"]["code"]) == (404, "NoSuchUpload")


async def test_commit_after_the_object_was_replaced_conflicts(api: Api) -> None:
    key = "replaced/object"
    signed = await presign(api, "direct", key)
    assert (await upload(api.session, signed.url, b"direct"))[0] == 201
    honest = {"size": 6, "md5": hashlib.md5(b"direct").hexdigest()}
    assert (await commit(api, "direct", key, **honest))[0] == 201
    status, _ = await api.put("direct", key, b"through the gateway")
    assert status == 201

    status, refused = await commit(api, "direct", key, **honest, upload_id=signed.upload_id)
    assert (status, refused["error"]["code"]) == (409, "UploadConflict")
    assert await api.get_sha256("direct", key) == (
        200,
        hashlib.sha256(b"through the gateway").hexdigest(),
        19,
    )


async def test_form_token_arriving_in_pieces_is_read_whole(api: Api) -> None:
    signed = await presign(api, "direct", "form/trickled.bin")
    form, content_type = browser_form(signed.fields["token"], b"slow network", "text/plain")
    cut = form.index(signed.token.encode()) + len(signed.token) // 2

    async def trickle() -> AsyncIterator[bytes]:
        yield form[:cut]
        await asyncio.sleep(0.1)  # shapes the traffic: the rest comes in a later read
        yield form[cut:]

    async with api.session.post(
        signed.url, data=trickle(), headers={"Content-Type": content_type}
    ) as resp:
        assert resp.status == 201, await resp.text()


@pytest.mark.parametrize("key", ["dir one/ünï cödé+%?#.txt", "a/b/c/d/e/f/deep.txt"])
async def test_keys_that_need_escaping_round_trip(api: Api, key: str) -> None:
    signed = await presign(api, "direct", key, content_type="text/plain")
    status, node_answer, _ = await upload(
        api.session, signed.url, key.encode(), **{"Content-Type": "text/plain"}
    )
    assert status == 201, node_answer
    assert node_answer["key"] == key
    status, stored = await commit(
        api, "direct", quote(key), size=len(key.encode()), md5=node_answer["etag"]
    )
    assert (status, stored["key"]) == (201, key), stored
    assert await api.get_sha256("direct", quote(key)) == (
        200,
        hashlib.sha256(key.encode()).hexdigest(),
        len(key.encode()),
    )


async def test_concurrent_commits_publish_one_version(api: Api) -> None:
    signed = await presign(api, "direct", "race/commit.bin")
    data = Body(2 * MiB, seed=504).bytes()
    assert (await upload(api.session, signed.url, data))[0] == 201
    statement = {"size": len(data), "md5": hashlib.md5(data).hexdigest()}
    answers = await asyncio.gather(
        *(commit(api, "direct", "race/commit.bin", **statement) for _ in range(4))
    )
    assert {status for status, _ in answers} == {201}
    assert len({stored["version"] for _, stored in answers}) == 1


async def test_a_sha256_stated_only_at_commit_is_hashed_on_the_node(api: Api) -> None:
    body = Body(3 * MiB + 1, seed=503)
    signed = await presign(api, "direct", "digest/at-commit.bin")
    status, node_answer, _ = await upload(api.session, signed.url, body.bytes())
    assert status == 201, node_answer
    assert node_answer["sha256"] is None  # the token bound none: the upload did not hash it

    wrong = hashlib.sha256(b"other").hexdigest()
    status, refused = await commit(
        api, "direct", "digest/at-commit.bin", size=body.size, sha256=wrong
    )
    assert (status, refused["error"]["code"]) == (400, "BadDigest")

    signed = await presign(api, "direct", "digest/at-commit.bin")
    status, node_answer, _ = await upload(api.session, signed.url, body.bytes())
    assert status == 201, node_answer
    status, stored = await commit(
        api, "direct", "digest/at-commit.bin", size=body.size, sha256=body.sha256()
    )
    assert status == 201, stored
    assert (stored["sha256"], stored["size"]) == (body.sha256(), body.size)
    assert await api.get_sha256("direct", "digest/at-commit.bin") == (
        200,
        body.sha256(),
        body.size,
    )


async def test_presigned_gets_go_to_each_partitions_first_replica(
    api: Api, shared_cluster: DevCluster
) -> None:
    """Reads spread over the nodes as the ring spreads partitions: each URL names the first
    replica the write recorded, which is its partition's most preferred node, not always n1."""
    ring = cluster_ring(shared_cluster)
    chosen: dict[str, str] = {}
    for index in range(12):
        key = f"spread/{index}"
        data = f"object {index}".encode()
        status, stored = await api.put("direct", key, data)
        assert status == 201, stored
        reader = await presign(api, "direct", key, method="GET")
        async with api.session.get(reader.url) as resp:
            assert resp.status == 200 and await resp.read() == data
        first = ring.primaries(partition_of(object_hash("direct", key), ring.partition_power))[0]
        chosen[key] = node_dir(shared_cluster, reader.url).name
        assert chosen[key] == first.id, (key, chosen[key], first.id)
    assert len(set(chosen.values())) > 1, chosen
