"""Must-show: a storage node refuses every direct upload outside its token's scope (signature,
expiry, key, bucket, method, node, size, content type, sha256, a replayed upload id, a retired
key id), says which check failed without echoing the secret or the signature, and keeps nothing
of what it refused; presign and commit check rights and arguments; an upload left uncommitted
past the pending grace cannot be committed and is dropped from the node."""

from __future__ import annotations

import asyncio
import base64
import gzip
import hashlib
import json
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from clusterkit import (
    Api,
    Body,
    Presigned,
    kept,
    node_dir,
    presign,
    start_cluster,
    wait_nothing_kept,
)

from shardgate.cli.dev import DevCluster
from shardgate.tokens import derived_key

KiB = 1024
MiB = 1024 * KiB
BUCKET = "refusals"


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any]
    text: str

    @property
    def code(self) -> str:
        return str(self.body["error"]["code"])

    @property
    def reason(self) -> str | None:
        reason = self.body["error"].get("reason")
        return None if reason is None else str(reason)


async def commit(api: Api, bucket: str, key: str, **body: Any) -> Answer:
    async with api.session.post(
        f"{api.object_url(bucket, key)}/commit", json=body, headers=api.auth
    ) as resp:
        text = await resp.text()
        return Answer(resp.status, json.loads(text), text)


async def send(
    session: aiohttp.ClientSession,
    url: str,
    data: Any,
    *,
    form_token: str | None = None,
    via: str = "put",
    content_type: str = "application/octet-stream",
    **headers: str,
) -> Answer:
    """PUT the body to a node URL, or POST it as a browser form (token field first, file last)."""
    if via == "put":
        request = session.put(url, data=data, headers={"Content-Type": content_type, **headers})
    else:
        form = aiohttp.FormData()
        if form_token is not None:
            form.add_field("token", form_token)
        form.add_field("file", data, filename="x.bin", content_type=content_type)
        request = session.post(url, data=form, headers=headers)
    async with request as resp:
        text = await resp.text()
        return Answer(resp.status, json.loads(text), text)


def assert_discreet(answer: Answer, token: str, *secret_values: str) -> None:
    """An error body names the failed check and nothing that would help forge a token."""
    signature = token.split(".")[1]
    raw_signature = base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))
    for leak in (*secret_values, signature, raw_signature.hex(), token):
        assert leak not in answer.text


def token_kid(token: str) -> str:
    payload = token.split(".")[0]
    return str(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["kid"])


async def wait_past(deadline: float) -> None:
    """Expiry is the subject here: wait for the wall clock itself to pass the deadline."""
    await asyncio.sleep(max(0.0, deadline - time.time()) + 0.2)


def tampered(token: str) -> str:
    payload, signature = token.split(".")
    middle = len(signature) // 2
    flipped = "A" if signature[middle] != "A" else "B"
    return f"{payload}.{signature[:middle]}{flipped}{signature[middle + 1 :]}"


@pytest.fixture
def api(shared_cluster: DevCluster, session: aiohttp.ClientSession) -> Api:
    return Api(session, shared_cluster.url, shared_cluster.api_key)


@pytest.fixture(scope="module")
def secret_values(shared_cluster: DevCluster) -> tuple[str, ...]:
    """The cluster secret and the upload-token key derived from it (no keys are configured)."""
    token_key = derived_key(shared_cluster.cluster_secret.encode())["k0"].decode()
    return shared_cluster.cluster_secret, token_key


@pytest.fixture(scope="module", autouse=True)
def bucket(shared_cluster: DevCluster) -> None:
    async def create() -> None:
        async with aiohttp.ClientSession() as session:
            api = Api(session, shared_cluster.url, shared_cluster.api_key)
            await api.create_bucket(BUCKET)
            assert (await api.put(BUCKET, "existing.bin", b"for presigned GETs"))[0] == 201

    asyncio.run(create())


SCOPE_CASES = ["signature", "expired", "key", "bucket", "method", "node", "missing", "malformed"]


async def out_of_scope(
    case: str, api: Api, cluster: DevCluster, key: str
) -> tuple[Presigned, str, str | None]:
    """A presigned upload, then the URL and token that step outside its scope in one way."""
    if case == "method":
        reader = await presign(api, BUCKET, "existing.bin", method="GET", expires_in=60)
        return reader, reader.url, reader.token
    signed = await presign(api, BUCKET, key, expires_in=1 if case == "expired" else 60)
    base, token = signed.url.split("?", 1)[0], signed.token
    if case == "signature":
        token = tampered(token)
    elif case == "expired":
        await wait_past(signed.expires)
    elif case == "key":
        base = base.removesuffix(key) + "other/key.bin"
    elif case == "bucket":
        base = base.replace(f"/{BUCKET}/", "/another-bucket/")
    elif case == "node":
        home = next(s.url for s in cluster.nodes.values() if base.startswith(s.url + "/"))
        away = next(s.url for s in cluster.nodes.values() if s.url != home)
        base = away + base.removeprefix(home)
    elif case == "missing":
        return signed, base, None
    elif case == "malformed":
        token = "not-a-token"
    return signed, f"{base}?token={token}", token


@pytest.mark.parametrize("via", ["put", "form"])
@pytest.mark.parametrize("case", SCOPE_CASES)
async def test_out_of_scope_upload_is_refused_with_its_reason(
    api: Api, shared_cluster: DevCluster, secret_values: tuple[str, ...], case: str, via: str
) -> None:
    key = f"scope/{case}-{via}.bin"
    signed, url, token = await out_of_scope(case, api, shared_cluster, key)
    answer = await send(api.session, url, b"x" * 64 * KiB, via=via, form_token=token)

    assert (answer.status, answer.code, answer.reason) == (403, "InvalidToken", case)
    assert_discreet(answer, signed.token, *secret_values)
    node = signed.url if case != "node" else url
    assert kept(shared_cluster, node, signed.upload_id) == []
    if case not in ("expired", "method"):
        # A refusal does not burn the upload id: the real URL still takes the upload.
        assert (await send(api.session, signed.url, b"ok", via=via, form_token=None)).status == 201


@pytest.mark.parametrize(
    ("via", "declared"),
    [
        pytest.param("put", False, id="put-chunked"),
        pytest.param("put", True, id="put-content-length"),
        pytest.param("form", False, id="form"),
    ],
)
async def test_body_over_max_size_is_cut_off_and_nothing_kept(
    api: Api, shared_cluster: DevCluster, via: str, declared: bool
) -> None:
    signed = await presign(api, BUCKET, f"size/{via}-{declared}.bin", max_size=1 * MiB)
    body = Body(2 * MiB, seed=4, chunk=64 * KiB)
    data: Any = body.bytes() if declared or via == "form" else body.chunks()
    answer = await send(api.session, signed.url, data, via=via)
    assert (answer.status, answer.code) == (413, "EntityTooLarge"), answer.text
    assert kept(shared_cluster, signed.url, signed.upload_id) == []
    await wait_nothing_kept(shared_cluster, signed.upload_id)  # nor an early copy on a peer


async def test_a_compressed_body_over_max_size_leaves_no_copy_on_any_node(
    api: Api, shared_cluster: DevCluster
) -> None:
    # The node decodes Content-Encoding, so the header's length is not the body's: 8 MiB of one
    # byte gzips to 8 KiB. Early copies told 8 KiB were once whole on the peers, and kept,
    # while the node refused the 8 MiB it decoded.
    signed = await presign(api, BUCKET, "size/gzip.bin", max_size=4 * MiB)
    packed = gzip.compress(b"A" * (8 * MiB))
    answer = await send(api.session, signed.url, packed, **{"Content-Encoding": "gzip"})
    assert (answer.status, answer.code) == (413, "EntityTooLarge"), answer.text
    await wait_nothing_kept(shared_cluster, signed.upload_id)


@pytest.mark.parametrize(
    ("sent", "status", "code"), [(9, 400, "BadRequest"), (11, 413, "EntityTooLarge")]
)
async def test_exact_size_token_refuses_other_sizes(
    api: Api, shared_cluster: DevCluster, sent: int, status: int, code: str
) -> None:
    signed = await presign(api, BUCKET, f"exact/{sent}.bin", size=10)
    answer = await send(api.session, signed.url, b"z" * sent)
    assert (answer.status, answer.code) == (status, code), answer.text
    assert kept(shared_cluster, signed.url, signed.upload_id) == []
    await wait_nothing_kept(shared_cluster, signed.upload_id)


@pytest.mark.parametrize("via", ["put", "form"])
async def test_wrong_content_type_is_refused(
    api: Api, shared_cluster: DevCluster, via: str
) -> None:
    signed = await presign(api, BUCKET, f"types/{via}.png", content_type="image/png")
    assert signed.headers == {"Content-Type": "image/png"}
    answer = await send(api.session, signed.url, b"plain text", via=via, content_type="text/plain")
    assert (answer.status, answer.code) == (415, "UnsupportedMediaType")
    assert kept(shared_cluster, signed.url, signed.upload_id) == []
    png = b"\x89PNG\r\n\x1a\n" + bytes(32)
    assert (
        await send(api.session, signed.url, png, via=via, content_type="image/png")
    ).status == 201


async def test_replayed_upload_id_is_refused(api: Api, shared_cluster: DevCluster) -> None:
    signed = await presign(api, BUCKET, "replay/once.bin")
    first = await send(api.session, signed.url, b"first")
    assert first.status == 201
    for via in ("put", "form"):
        again = await send(api.session, signed.url, b"second", via=via)
        assert (again.status, again.code) == (409, "UploadIdUsed")
    pending = node_dir(shared_cluster, signed.url) / "pending" / f"{signed.upload_id}.data"
    assert pending.read_bytes() == b"first"

    # Two racing uploads with one token: exactly one is taken.
    racing = await presign(api, BUCKET, "replay/race.bin")
    answers = await asyncio.gather(
        *(send(api.session, racing.url, Body(1 * MiB, seed=i).chunks()) for i in range(2))
    )
    assert sorted(a.status for a in answers) == [201, 409]


async def test_body_not_matching_the_bound_sha256_is_refused(
    api: Api, shared_cluster: DevCluster
) -> None:
    body = Body(1 * MiB, seed=6)
    signed = await presign(
        api, BUCKET, "digest/bound.bin", sha256=hashlib.sha256(b"something else").hexdigest()
    )
    answer = await send(api.session, signed.url, body.chunks())
    assert (answer.status, answer.code) == (400, "BadDigest")
    assert kept(shared_cluster, signed.url, signed.upload_id) == []
    # The peers had every byte as an early copy, but never the body's end: they keep nothing.
    await wait_nothing_kept(shared_cluster, signed.upload_id)
    refused = await commit(api, BUCKET, "digest/bound.bin", size=body.size, sha256=body.sha256())
    assert (refused.status, refused.code) == (404, "NoSuchUpload")


async def test_presign_and_commit_need_their_rights(api: Api) -> None:
    async with api.session.post(
        f"{api.url}/v1/keys", json={"name": "reader", "rights": ["read"]}, headers=api.auth
    ) as resp:
        assert resp.status == 201
        reader = Api(api.session, api.url, (await resp.json())["key"])
    body = {"bucket": BUCKET, "key": "existing.bin"}
    cases = [
        (reader, {**body, "method": "PUT"}, 403, "AccessDenied"),
        (reader, {**body, "method": "GET"}, 200, None),
        (Api(api.session, api.url, "not-a-key"), body, 401, "Unauthorized"),
    ]
    for who, request, status, code in cases:
        async with api.session.post(f"{api.url}/v1/presign", json=request, headers=who.auth) as r:
            assert r.status == status
            assert code is None or (await r.json())["error"]["code"] == code
    async with api.session.post(f"{api.url}/v1/presign", json=body) as resp:
        assert resp.status == 401
    answer = await commit(reader, BUCKET, "existing.bin", size=1, md5="0" * 32)
    assert (answer.status, answer.code) == (403, "AccessDenied")


_BAD_PRESIGNS: list[Any] = [
    pytest.param({"method": "POST"}, id="method-post"),
    pytest.param({"expires_in": 0}, id="expires-zero"),
    pytest.param({"expires_in": 30 * 86400}, id="expires-past-max"),
    pytest.param({"max_size": -1}, id="negative-max-size"),
    pytest.param({"size": "10"}, id="size-string"),
    pytest.param({"sha256": "ABC"}, id="sha256-not-hex"),
    pytest.param({"content_type": 5}, id="content-type-number"),
    pytest.param(
        {"expires_in": "60"},
        id="expires-string",
    ),
    pytest.param(
        {"expires_in": True},
        id="expires-bool",
    ),
    pytest.param(
        {"expires_in": 10**400},
        id="expires-huge-int",
    ),
    pytest.param(
        {"size": 2 * MiB, "max_size": 1 * MiB},
        id="size-over-max-size",
    ),
]


@pytest.mark.parametrize("fields", _BAD_PRESIGNS)
async def test_presign_refuses_bad_arguments(api: Api, fields: dict[str, Any]) -> None:
    async with api.session.post(
        f"{api.url}/v1/presign",
        json={"bucket": BUCKET, "key": "args.bin", **fields},
        headers=api.auth,
    ) as resp:
        body = await resp.json()
        assert (resp.status, body["error"]["code"]) == (400, "InvalidArgument"), body


async def test_token_from_a_retired_key_id_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, session: aiohttp.ClientSession
) -> None:
    old, new = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    monkeypatch.setenv("SHARDGATE_TOKEN_KEYS", f"old={old},new={new}")
    monkeypatch.setenv("SHARDGATE_GATEWAY_TOKEN_KID", "old")
    cluster = start_cluster(tmp_path)
    try:
        api = Api(session, cluster.url, cluster.api_key)
        await api.create_bucket(BUCKET)
        used = await presign(api, BUCKET, "rotation/used.bin")
        kept_back = await presign(api, BUCKET, "rotation/kept-back.bin")
        assert token_kid(used.token) == token_kid(kept_back.token) == "old"
        assert (await send(session, used.url, b"signed with old")).status == 201

        # Rotate: the nodes now know only "new"; then the gateway signs with "new".
        monkeypatch.setenv("SHARDGATE_TOKEN_KEYS", f"new={new}")
        monkeypatch.delenv("SHARDGATE_GATEWAY_TOKEN_KID")
        for node_id in cluster.node_ids:
            cluster.nodes[node_id].stop()
            cluster.start_node(node_id)
        answer = await send(session, kept_back.url, b"too late for old")
        assert (answer.status, answer.code, answer.reason) == (403, "InvalidToken", "kid")
        assert_discreet(answer, kept_back.token, old, new, cluster.cluster_secret)
        assert kept(cluster, kept_back.url, kept_back.upload_id) == []

        assert cluster.gateway is not None
        cluster.gateway.stop()
        cluster.start_gateway()
        api = Api(session, cluster.url, cluster.api_key)
        fresh = await presign(api, BUCKET, "rotation/fresh.bin")
        assert token_kid(fresh.token) == "new"
        assert (await send(session, fresh.url, b"signed with new")).status == 201
        # What was uploaded under the old key commits after the rotation and the restarts.
        done = await commit(
            api,
            BUCKET,
            "rotation/used.bin",
            size=15,
            md5=hashlib.md5(b"signed with old").hexdigest(),
        )
        assert done.status == 201, done.text
        assert await api.get_sha256(BUCKET, "rotation/used.bin") == (
            200,
            hashlib.sha256(b"signed with old").hexdigest(),
            15,
        )
    finally:
        cluster.stop()


@pytest.fixture
def short_grace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[DevCluster]:
    monkeypatch.setenv("SHARDGATE_GATEWAY_PENDING_GRACE", "1")
    cluster = start_cluster(tmp_path)
    yield cluster
    cluster.stop()


async def test_commit_after_the_pending_grace_fails_and_drops_the_upload(
    short_grace: DevCluster, session: aiohttp.ClientSession
) -> None:
    api = Api(session, short_grace.url, short_grace.api_key)
    await api.create_bucket(BUCKET)
    # Expiry is in whole seconds, so a 1 s token may have only a moment left: give it 3.
    signed = await presign(api, BUCKET, "grace/late.bin", expires_in=3)
    assert (await send(session, signed.url, b"uncommitted")).status == 201
    state = node_dir(short_grace, signed.url) / "pending" / f"{signed.upload_id}.json"
    assert kept(short_grace, signed.url, signed.upload_id) != []

    await wait_past(signed.expires + 1 + 1)  # token expiry, the 1 s grace, and then some
    md5 = hashlib.md5(b"uncommitted").hexdigest()
    for _ in range(2):
        answer = await commit(api, BUCKET, "grace/late.bin", size=11, md5=md5)
        assert (answer.status, answer.code) == (409, "UploadConflict"), answer.text
    assert kept(short_grace, signed.url, signed.upload_id) == []
    assert json.loads(state.read_bytes())["state"] == "dropped"
    async with session.get(api.object_url(BUCKET, "grace/late.bin"), headers=api.auth) as resp:
        assert resp.status == 404


async def test_commit_while_the_receiving_node_is_down_is_unavailable(
    cluster: DevCluster, session: aiohttp.ClientSession
) -> None:
    api = Api(session, cluster.url, cluster.api_key)
    await api.create_bucket(BUCKET)
    signed = await presign(api, BUCKET, "down/source.bin")
    assert (await send(session, signed.url, b"stranded")).status == 201
    node_id = node_dir(cluster, signed.url).name
    cluster.kill_node(node_id)
    answer = await commit(
        api, BUCKET, "down/source.bin", size=8, md5=hashlib.md5(b"stranded").hexdigest()
    )
    assert (answer.status, answer.code) == (503, "ServiceUnavailable"), answer.text


async def test_empty_upload_commits(api: Api) -> None:
    signed = await presign(api, BUCKET, "empty/zero.bin", size=0)
    assert (await send(api.session, signed.url, b"")).status == 201
    done = await commit(api, BUCKET, "empty/zero.bin", size=0, md5=hashlib.md5(b"").hexdigest())
    assert (done.status, done.body.get("size")) == (201, 0), done.text


async def test_max_size_zero_admits_only_empty_bodies(api: Api) -> None:
    signed = await presign(api, BUCKET, "empty/max-zero.bin", max_size=0)
    answer = await send(api.session, signed.url, b"x")
    assert (answer.status, answer.code) == (413, "EntityTooLarge")
