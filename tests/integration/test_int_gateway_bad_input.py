"""Must-show: every refused upload answers its exact status and JSON error code, and leaves no
object, no catalog row, no replica and no temp file behind, against real processes.

One table drives it. Each row sends one request; the test snapshots what the gateway and every
node hold for the addressed object before and after, and waits for the nodes' tmp/ dirs to
empty (a node cleans up asynchronously once the gateway drops a cancelled stream).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
from clusterkit import (
    Api,
    Body,
    cluster_ring,
    create_key,
    object_files,
    put_bucket,
    replica_versions,
    wait_for_metric,
    wait_tmp_empty,
)
from yarl import URL

from shardgate.cli.dev import DevCluster

KiB = 1024
MiB = 1024 * KiB
BUCKET = "badin"
OTHER_BUCKET = "badin-other"
LIMIT = 1 * MiB
ALLOWED = ["image/*", "text/plain", "application/octet-stream"]
EXISTING = "exists.txt"
EXISTING_BODY = b"the original, which a refused create-only PUT must leave alone\n"
PNG = b"\x89PNG\r\n\x1a\n"
BOUNDARY = "sgBoundary7MA4YWxkTrZu0gW"


@dataclass
class Ctx:
    cluster: DevCluster
    api: Api
    tokens: dict[str, str | None]  # auth name -> bearer header value (None: send none)


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any]
    headers: dict[str, str]


Send = Callable[[Ctx], Awaitable[Answer]]


@dataclass(frozen=True)
class Target:
    """An object a row addresses: its decoded key, and the key as it goes into the URL."""

    key: str
    raw: str | None = None
    bucket: str = BUCKET

    @property
    def path(self) -> str:
        return self.raw if self.raw is not None else quote(self.key, safe="/")


@dataclass(frozen=True)
class Case:
    send: Send
    status: int
    code: str
    targets: tuple[Target, ...]
    existing: bool = False
    headers: dict[str, str] = field(default_factory=dict)  # response headers that must be there


def object_url(ctx: Ctx, target: Target) -> URL:
    return URL(f"{ctx.api.url}/v1/objects/{target.bucket}/{target.path}", encoded=True)


async def stalled(first: bytes) -> AsyncIterator[bytes]:
    """Sends `first`, then nothing more: the answer must not depend on the rest of the body."""
    yield first
    await asyncio.Event().wait()


async def streamed(body: Body, then_stall: bool = False) -> AsyncIterator[bytes]:
    async for chunk in body.chunks():
        yield chunk
    if then_stall:
        await asyncio.Event().wait()


async def answer(resp: aiohttp.ClientResponse) -> Answer:
    raw = await resp.read()
    try:
        body = await resp.json(content_type=None) if raw else {}
    except ValueError:
        body = {"unparsed": raw.decode(errors="replace")}
    return Answer(resp.status, body, dict(resp.headers))


def auth_headers(ctx: Ctx, auth: str) -> dict[str, str]:
    token = ctx.tokens[auth]
    return {} if token is None else {"Authorization": token}


def put(
    target: Target,
    data: Callable[[], object],
    *,
    auth: str = "admin",
    **headers: str,
) -> Send:
    async def send(ctx: Ctx) -> Answer:
        async with ctx.api.session.put(
            object_url(ctx, target), data=data(), headers={**auth_headers(ctx, auth), **headers}
        ) as resp:
            return await answer(resp)

    return send


def form(
    body: bytes,
    *,
    content_type: str = f"multipart/form-data; boundary={BOUNDARY}",
    bucket: str = BUCKET,
    auth: str = "admin",
) -> Send:
    async def send(ctx: Ctx) -> Answer:
        headers = {**auth_headers(ctx, auth), "Content-Type": content_type}
        async with ctx.api.session.post(
            f"{ctx.api.url}/v1/objects/{bucket}", data=body, headers=headers
        ) as resp:
            return await answer(resp)

    return send


def delete(target: Target, *, auth: str) -> Send:
    async def send(ctx: Ctx) -> Answer:
        async with ctx.api.session.delete(
            object_url(ctx, target), headers=auth_headers(ctx, auth)
        ) as resp:
            return await answer(resp)

    return send


def multipart(*parts: tuple[str, str | None, str | None, bytes], boundary: str = BOUNDARY) -> bytes:
    """(field name, filename, content type, payload) parts, closed by the final boundary."""
    out = bytearray()
    for name, filename, content_type, payload in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        out += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n".encode()
        if content_type:
            out += f"Content-Type: {content_type}\r\n".encode()
        out += b"\r\n" + payload + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return bytes(out)


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def const(value: object) -> Callable[[], object]:
    return lambda: value


SMALL = Body(200 * KiB, seed=21).bytes()
TEXT = b"plain text, nothing else\n" * 100


def _t(key: str, raw: str | None = None, bucket: str = BUCKET) -> tuple[Target, ...]:
    return (Target(key, raw, bucket),)


def _put_case(key: str, data: Callable[[], object], status: int, code: str, **hdrs: str) -> Case:
    target = Target(key)
    return Case(put(target, data, **hdrs), status, code, (target,))


def _key_case(key: str, raw: str) -> Case:
    target = Target(key, raw)
    return Case(put(target, const(b"data")), 400, "InvalidObjectName", (target,))


_TRUNCATED = multipart(
    ("key", None, None, b"form/truncated.bin"),
    ("file", "t.bin", "application/octet-stream", SMALL),
)
_TRUNCATED = _TRUNCATED[: _TRUNCATED.index(SMALL) + len(SMALL) // 2]

CASES = [
    pytest.param(
        _put_case(
            "oversize/declared.bin",
            lambda: stalled(b"x" * KiB),
            413,
            "EntityTooLarge",
            **{"Content-Length": str(LIMIT + 1)},
        ),
        id="oversize-declared",
    ),
    pytest.param(
        _put_case(
            "oversize/chunked.bin",
            lambda: streamed(Body(LIMIT + 256 * KiB, seed=22, chunk=64 * KiB), then_stall=True),
            413,
            "EntityTooLarge",
        ),
        id="oversize-chunked",
    ),
    pytest.param(
        _put_case(
            "magic/not-png.png",
            const(TEXT),
            415,
            "UnsupportedMediaType",
            **{"Content-Type": "image/png"},
        ),
        id="wrong-magic-png",
    ),
    pytest.param(
        _put_case(
            "magic/png-as-jpeg.jpg",
            const(PNG + SMALL),
            415,
            "UnsupportedMediaType",
            **{"Content-Type": "image/jpeg"},
        ),
        id="wrong-magic-jpeg",
    ),
    pytest.param(
        _put_case(
            "magic/nul.txt",
            const(b"text\x00with a NUL"),
            415,
            "UnsupportedMediaType",
            **{"Content-Type": "text/plain"},
        ),
        id="text-with-nul",
    ),
    pytest.param(
        _put_case(
            "types/doc.pdf",
            const(b"%PDF-1.7\n" + SMALL),
            415,
            "UnsupportedMediaType",
            **{"Content-Type": "application/pdf"},
        ),
        id="disallowed-type",
    ),
    pytest.param(_key_case("a//b", "a//b"), id="key-empty-segment"),
    pytest.param(_key_case("a/./b", "a/./b"), id="key-dot-segment"),
    pytest.param(_key_case("../x", "../x"), id="key-dotdot-raw"),
    pytest.param(_key_case("../x", "%2E%2E/x"), id="key-dotdot-encoded"),
    pytest.param(_key_case("a/..", "a/%2e%2e"), id="key-dotdot-last"),
    pytest.param(_key_case("dir/", "dir/"), id="key-trailing-slash"),
    pytest.param(_key_case("a\x01b", "a%01b"), id="key-control-char"),
    pytest.param(_key_case("a\x7fb", "a%7Fb"), id="key-del-char"),
    pytest.param(_key_case("k" * 1025, "k" * 1025), id="key-too-long"),
    pytest.param(
        _put_case(
            "digest/md5.bin", const(SMALL), 400, "BadDigest", **{"Content-MD5": b64(b"\0" * 16)}
        ),
        id="bad-md5",
    ),
    pytest.param(
        _put_case(
            "digest/md5-chunked.bin",
            lambda: streamed(Body(600 * KiB, seed=23, chunk=64 * KiB)),
            400,
            "BadDigest",
            **{"Content-MD5": b64(hashlib.md5(b"other").digest())},
        ),
        id="bad-md5-chunked",
    ),
    pytest.param(
        _put_case(
            "digest/sha-hex.bin",
            const(SMALL),
            400,
            "BadDigest",
            **{"X-Checksum-SHA256": hashlib.sha256(b"other").hexdigest()},
        ),
        id="bad-sha256-hex",
    ),
    pytest.param(
        _put_case(
            "digest/sha-b64.bin",
            const(SMALL),
            400,
            "BadDigest",
            **{"X-Checksum-SHA256": b64(hashlib.sha256(SMALL[:-1]).digest())},
        ),
        id="bad-sha256-base64",
    ),
    pytest.param(
        _put_case(
            "digest/md5-right-sha-wrong.bin",
            const(SMALL),
            400,
            "BadDigest",
            **{
                "Content-MD5": b64(hashlib.md5(SMALL).digest()),
                "X-Checksum-SHA256": hashlib.sha256(b"x").hexdigest(),
            },
        ),
        id="good-md5-bad-sha256",
    ),
    pytest.param(
        _put_case(
            "digest/md5-junk.bin", const(SMALL), 400, "InvalidDigest", **{"Content-MD5": "zz!"}
        ),
        id="malformed-md5",
    ),
    pytest.param(
        _put_case(
            "digest/md5-short.bin",
            const(SMALL),
            400,
            "InvalidDigest",
            **{"Content-MD5": b64(b"\1" * 15)},
        ),
        id="malformed-md5-length",
    ),
    pytest.param(
        _put_case(
            "digest/sha-junk.bin",
            const(SMALL),
            400,
            "InvalidDigest",
            **{"X-Checksum-SHA256": "abc123"},
        ),
        id="malformed-sha256",
    ),
    pytest.param(
        Case(
            put(Target(EXISTING), const(b"replacement\n"), **{"If-None-Match": "*"}),
            412,
            "PreconditionFailed",
            (Target(EXISTING),),
            existing=True,
        ),
        id="create-only-conflict",
    ),
    pytest.param(
        _put_case(
            "cond/etag.bin",
            const(SMALL),
            400,
            "InvalidArgument",
            **{"If-None-Match": '"abc"'},
        ),
        id="if-none-match-etag",
    ),
    pytest.param(
        Case(
            put(Target("auth/none.bin"), const(SMALL), auth="none"),
            401,
            "Unauthorized",
            _t("auth/none.bin"),
            headers={"WWW-Authenticate": 'Bearer realm="shardgate"'},
        ),
        id="missing-key",
    ),
    pytest.param(
        Case(
            put(Target("auth/bogus.bin"), const(SMALL), auth="bogus"),
            401,
            "Unauthorized",
            _t("auth/bogus.bin"),
        ),
        id="invalid-key",
    ),
    pytest.param(
        Case(
            put(Target("auth/basic.bin"), const(SMALL), auth="basic"),
            401,
            "Unauthorized",
            _t("auth/basic.bin"),
        ),
        id="not-bearer",
    ),
    pytest.param(
        Case(
            put(Target("auth/read-only.bin"), const(SMALL), auth="read"),
            403,
            "AccessDenied",
            _t("auth/read-only.bin"),
        ),
        id="read-key-put",
    ),
    pytest.param(
        Case(delete(Target(EXISTING), auth="read"), 403, "AccessDenied", _t(EXISTING), True),
        id="read-key-delete",
    ),
    pytest.param(
        Case(
            put(Target("auth/other.bin"), const(SMALL), auth="other"),
            403,
            "AccessDenied",
            _t("auth/other.bin"),
        ),
        id="other-bucket-key-put",
    ),
    pytest.param(
        Case(
            form(
                multipart(("key", None, None, b"auth/form.txt"), ("file", "f.txt", None, TEXT)),
                auth="read",
            ),
            403,
            "AccessDenied",
            _t("auth/form.txt"),
        ),
        id="read-key-form",
    ),
    pytest.param(
        Case(
            put(Target("x.bin", bucket="badin-nope"), const(SMALL)),
            404,
            "NoSuchBucket",
            _t("x.bin", bucket="badin-nope"),
        ),
        id="unknown-bucket",
    ),
    pytest.param(
        Case(
            form(
                multipart(("key", None, None, b"x.txt"), ("file", "f.txt", None, TEXT)),
                bucket="badin-nope",
            ),
            404,
            "NoSuchBucket",
            _t("x.txt", bucket="badin-nope"),
        ),
        id="unknown-bucket-form",
    ),
    pytest.param(
        Case(
            form(
                multipart(
                    ("key", None, None, b"form/bad-boundary.txt"),
                    ("file", "f.txt", "text/plain", TEXT),
                    boundary="SomethingElseEntirely",
                )
            ),
            400,
            "MalformedPOSTRequest",
            _t("form/bad-boundary.txt"),
        ),
        id="form-wrong-boundary",
    ),
    pytest.param(
        Case(
            form(
                multipart(("key", None, None, b"form/no-boundary.txt"), ("file", "f", None, TEXT)),
                content_type="multipart/form-data",
            ),
            400,
            "MalformedPOSTRequest",
            _t("form/no-boundary.txt"),
        ),
        id="form-no-boundary-param",
    ),
    pytest.param(
        Case(form(_TRUNCATED), 400, "MalformedPOSTRequest", _t("form/truncated.bin")),
        id="form-truncated",
    ),
    pytest.param(
        Case(
            form(b'{"file": "x"}', content_type="application/json"),
            400,
            "MalformedPOSTRequest",
            (),
        ),
        id="form-not-multipart",
    ),
    pytest.param(
        Case(
            form(multipart(("key", None, None, b"form/no-file.txt"), ("note", None, None, b"x"))),
            400,
            "MalformedPOSTRequest",
            _t("form/no-file.txt"),
        ),
        id="form-without-file",
    ),
    pytest.param(
        Case(
            form(multipart(("key", None, None, b"form//bad"), ("file", "f.txt", None, TEXT))),
            400,
            "InvalidObjectName",
            _t("form//bad", "form//bad"),
        ),
        id="form-bad-key-field",
    ),
    pytest.param(
        Case(
            form(
                multipart(
                    ("key", None, None, b"form/big-field.txt"),
                    ("note", None, None, b"n" * 5000),
                    ("file", "f.txt", None, TEXT),
                )
            ),
            400,
            "MalformedPOSTRequest",
            _t("form/big-field.txt"),
        ),
        id="form-oversized-field",
    ),
]


@dataclass(frozen=True)
class Seen:
    """What the gateway and the nodes hold for one object."""

    get: tuple[int, str, int]
    replicas: dict[str, tuple[str, str]]
    files: tuple[str, ...]


async def seen(ctx: Ctx, target: Target) -> Seen:
    digest = hashlib.sha256()
    size = 0
    async with ctx.api.session.get(object_url(ctx, target), headers=ctx.api.auth) as resp:
        async for chunk in resp.content.iter_chunked(MiB):
            digest.update(chunk)
            size += len(chunk)
        status = resp.status
    ring = cluster_ring(ctx.cluster)
    replicas = await replica_versions(
        ctx.api.session, ring, ctx.cluster.cluster_secret, target.bucket, target.key
    )
    files = object_files(ctx.cluster, target.bucket, target.key)
    return Seen((status, digest.hexdigest() if status == 200 else "", size), replicas, files)


async def listing(api: Api, bucket: str) -> list[tuple[str, str, str]]:
    async with api.session.get(f"{api.url}/v1/objects/{bucket}", headers=api.auth) as resp:
        assert resp.status == 200, await resp.text()
        body = await resp.json()
    assert body["next"] is None
    return [(o["key"], o["version"], o["etag"]) for o in body["objects"]]


async def new_key(api: Api, name: str, rights: list[str], buckets: list[str] | None) -> str:
    return str((await create_key(api, name, rights, buckets))["key"])


@pytest.fixture
async def ctx(shared_cluster: DevCluster, session: aiohttp.ClientSession) -> Ctx:
    api = Api(session, shared_cluster.url, shared_cluster.api_key)
    policy = {"max_object_size": LIMIT, "allowed_types": ALLOWED}
    for bucket in (BUCKET, OTHER_BUCKET):
        await put_bucket(api, bucket, **policy)
    status, _, _ = await api.get_sha256(BUCKET, EXISTING)
    if status == 404:
        status, _ = await api.put(BUCKET, EXISTING, EXISTING_BODY, **{"Content-Type": "text/plain"})
        assert status == 201
    read = await new_key(api, "reader", ["read"], None)
    other = await new_key(api, "other-bucket", ["read", "write"], [OTHER_BUCKET])
    tokens: dict[str, str | None] = {
        "admin": f"Bearer {shared_cluster.api_key}",
        "none": None,
        "bogus": "Bearer sg_thisKeyWasNeverIssued",
        "basic": "Basic " + b64(b"user:pass"),
        "read": f"Bearer {read}",
        "other": f"Bearer {other}",
    }
    return Ctx(shared_cluster, api, tokens)


@pytest.mark.parametrize("case", CASES)
async def test_refused_request_leaves_nothing(ctx: Ctx, case: Case) -> None:
    before_listing = await listing(ctx.api, BUCKET)
    before = [await seen(ctx, target) for target in case.targets]
    for state in before:
        if case.existing:
            assert state.get[0] == 200 and state.replicas, "the existing object must be there"
        else:
            assert state.get[0] in (400, 404) and not state.replicas and not state.files

    got = await case.send(ctx)

    assert (got.status, got.body.get("error", {}).get("code")) == (case.status, case.code), got
    assert got.body["error"]["message"]
    assert got.headers["Content-Type"].startswith("application/json")
    for name, value in case.headers.items():
        assert got.headers.get(name) == value
    await wait_tmp_empty(ctx.cluster)
    after = [await seen(ctx, target) for target in case.targets]
    assert after == before
    assert await listing(ctx.api, BUCKET) == before_listing
    for target in case.targets:
        if target.bucket != BUCKET:
            async with ctx.api.session.get(
                f"{ctx.api.url}/v1/buckets/{target.bucket}", headers=ctx.api.auth
            ) as resp:
                assert resp.status == 404, "a refused upload must not create its bucket"


@pytest.mark.parametrize("chunked", [False, True], ids=["declared", "chunked"])
async def test_limit_is_inclusive_and_one_byte_more_is_refused(ctx: Ctx, chunked: bool) -> None:
    how = "chunked" if chunked else "declared"
    exact = Body(LIMIT, seed=24, chunk=64 * KiB)
    headers = {} if chunked else {"Content-Length": str(LIMIT)}
    status, record = await ctx.api.put(BUCKET, f"limit/exact-{how}.bin", exact.chunks(), **headers)
    assert status == 201, record
    assert record["size"] == LIMIT
    assert await ctx.api.get_sha256(BUCKET, f"limit/exact-{how}.bin") == (
        200,
        exact.sha256(),
        LIMIT,
    )

    over = Target(f"limit/over-{how}.bin")
    before = await seen(ctx, over)
    body = Body(LIMIT + 1, seed=25, chunk=64 * KiB)
    headers = {} if chunked else {"Content-Length": str(LIMIT + 1)}
    got = await put(over, body.chunks, **headers)(ctx)
    assert (got.status, got.body["error"]["code"]) == (413, "EntityTooLarge")
    await wait_tmp_empty(ctx.cluster)
    assert await seen(ctx, over) == before


async def held(first: bytes, rest: bytes, release: asyncio.Event) -> AsyncIterator[bytes]:
    yield first
    await release.wait()
    yield rest


async def test_create_only_loser_leaves_the_winner_intact(ctx: Ctx) -> None:
    target = Target("race/created-once.bin")
    first, second = Body(600 * KiB, seed=51).bytes(), Body(600 * KiB, seed=52).bytes()
    gates = asyncio.Event(), asyncio.Event()
    headers = {"If-None-Match": "*", "Content-Length": str(len(first))}

    async def create(data: bytes, gate: asyncio.Event) -> Answer:
        body = held(data[: 64 * KiB], data[64 * KiB :], gate)
        return await put(target, lambda: body, **headers)(ctx)

    # The first upload takes its version before the second; both pass the "does it exist" check.
    early = asyncio.create_task(create(first, gates[0]))
    await wait_for_metric(ctx.api, "shardgate_gateway_uploads_in_progress", 1)
    late = asyncio.create_task(create(second, gates[1]))
    await wait_for_metric(ctx.api, "shardgate_gateway_uploads_in_progress", 2)
    gates[0].set()
    won = await early
    gates[1].set()
    lost = await late

    assert won.status == 201, won.body
    assert (lost.status, lost.body["error"]["code"]) == (412, "PreconditionFailed")
    version, etag = won.body["version"], won.body["etag"]
    expected = Seen(
        (200, hashlib.sha256(first).hexdigest(), len(first)),
        {node_id: (version, etag) for node_id in ctx.cluster.node_ids},
        tuple(sorted(f"{n}/{version}.data" for n in ctx.cluster.node_ids)),
    )
    assert await seen(ctx, target) == expected
    await wait_tmp_empty(ctx.cluster)
