"""Must-show: CORS preflights and actual responses per bucket origin list, public-read buckets
served anonymously, and risky types downloaded as nosniff attachments, against real processes."""

from __future__ import annotations

import hashlib

import aiohttp
import pytest
from clusterkit import Api, Body, put_bucket

from shardgate.cli.dev import DevCluster

ORIGIN = "https://app.example.com"
OTHER_ORIGIN = "https://evil.example.net"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


async def error_code(resp: aiohttp.ClientResponse) -> str:
    body = await resp.json()
    return str(body["error"]["code"])


@pytest.fixture
def api(shared_cluster: DevCluster, session: aiohttp.ClientSession) -> Api:
    return Api(session, shared_cluster.url, shared_cluster.api_key)


async def test_preflight_from_allowed_origin(api: Api) -> None:
    await put_bucket(api, "cors-pre", cors_origins=[ORIGIN])
    headers = {
        "Origin": ORIGIN,
        "Access-Control-Request-Method": "PUT",
        "Access-Control-Request-Headers": "Content-Type, X-Checksum-SHA256, X-Meta-Owner",
    }
    async with api.session.options(
        api.object_url("cors-pre", "photos/cat.png"), headers=headers
    ) as resp:
        assert resp.status == 204, await resp.text()
        assert resp.headers["Access-Control-Allow-Origin"] == ORIGIN
        methods = {m.strip() for m in resp.headers["Access-Control-Allow-Methods"].split(",")}
        assert {"GET", "HEAD", "PUT", "POST", "DELETE"} <= methods
        allowed = {
            h.strip().lower() for h in resp.headers["Access-Control-Allow-Headers"].split(",")
        }
        assert {"content-type", "x-checksum-sha256", "x-meta-owner"} <= allowed
        assert int(resp.headers["Access-Control-Max-Age"]) > 0
        assert "Origin" in resp.headers.get("Vary", "")

    # The bucket-level form POST path takes preflights too, and no API key is ever needed.
    form_headers = {"Origin": ORIGIN, "Access-Control-Request-Method": "POST"}
    async with api.session.options(f"{api.url}/v1/objects/cors-pre", headers=form_headers) as resp:
        assert resp.status == 204
        assert resp.headers["Access-Control-Allow-Origin"] == ORIGIN


@pytest.mark.parametrize(
    ("origin", "method", "request_headers"),
    [
        (OTHER_ORIGIN, "PUT", None),
        (ORIGIN + ":8443", "GET", None),
        (ORIGIN, "PATCH", None),
        (ORIGIN, "PUT", "X-Forwarded-For"),
    ],
    ids=["other-origin", "other-port", "method-not-allowed", "header-not-allowed"],
)
async def test_preflight_refused_without_acao(
    api: Api, origin: str, method: str, request_headers: str | None
) -> None:
    await put_bucket(api, "cors-refuse", cors_origins=[ORIGIN])
    headers = {"Origin": origin, "Access-Control-Request-Method": method}
    if request_headers:
        headers["Access-Control-Request-Headers"] = request_headers
    async with api.session.options(api.object_url("cors-refuse", "a.txt"), headers=headers) as resp:
        assert resp.status == 403
        assert await error_code(resp) == "CORSForbidden"
        assert "Access-Control-Allow-Origin" not in resp.headers
        assert "Access-Control-Allow-Methods" not in resp.headers


async def test_preflight_for_unknown_bucket_is_refused(api: Api) -> None:
    headers = {"Origin": ORIGIN, "Access-Control-Request-Method": "GET"}
    async with api.session.options(api.object_url("cors-nobucket", "a"), headers=headers) as resp:
        assert resp.status == 403
        assert "Access-Control-Allow-Origin" not in resp.headers


async def test_actual_responses_carry_acao_only_for_allowed_origins(api: Api) -> None:
    await put_bucket(api, "cors-actual", cors_origins=[ORIGIN])
    data = Body(70_000, seed=11).bytes()
    status, record = await api.put("cors-actual", "doc.bin", data)
    assert status == 201
    url = api.object_url("cors-actual", "doc.bin")

    async with api.session.get(url, headers={**api.auth, "Origin": ORIGIN}) as resp:
        assert resp.status == 200
        assert await resp.read() == data
        assert resp.headers["Access-Control-Allow-Origin"] == ORIGIN
        exposed = {
            h.strip().lower() for h in resp.headers["Access-Control-Expose-Headers"].split(",")
        }
        assert {"etag", "content-length", "x-shardgate-version"} <= exposed
        assert resp.headers["ETag"] == f'"{record["etag"]}"'

    # A browser must be able to read an error too, or it cannot tell a 404 from a CORS failure.
    async with api.session.get(
        api.object_url("cors-actual", "missing"), headers={**api.auth, "Origin": ORIGIN}
    ) as resp:
        assert resp.status == 404
        assert resp.headers["Access-Control-Allow-Origin"] == ORIGIN

    # An upload from the allowed origin: ACAO on the 201 as well.
    async with api.session.put(
        api.object_url("cors-actual", "up.bin"),
        data=b"x" * 10,
        headers={**api.auth, "Origin": ORIGIN},
    ) as resp:
        assert resp.status == 201
        assert resp.headers["Access-Control-Allow-Origin"] == ORIGIN

    async with api.session.get(url, headers={**api.auth, "Origin": OTHER_ORIGIN}) as resp:
        assert resp.status == 200
        assert "Access-Control-Allow-Origin" not in resp.headers
        assert "Access-Control-Expose-Headers" not in resp.headers


async def test_wildcard_bucket_echoes_any_origin(api: Api) -> None:
    await put_bucket(api, "cors-any", cors_origins=["*"])
    headers = {"Origin": OTHER_ORIGIN, "Access-Control-Request-Method": "GET"}
    async with api.session.options(api.object_url("cors-any", "x"), headers=headers) as resp:
        assert resp.status == 204
        assert resp.headers["Access-Control-Allow-Origin"] == OTHER_ORIGIN


async def test_public_read_bucket_serves_anonymous_get_and_head(api: Api) -> None:
    await put_bucket(api, "cors-public", public_read=True)
    await put_bucket(api, "cors-private")
    data = Body(300_000, seed=12).bytes()
    for bucket in ("cors-public", "cors-private"):
        status, _ = await api.put(bucket, "img.png", PNG + data, **{"Content-Type": "image/png"})
        assert status == 201

    public = api.object_url("cors-public", "img.png")
    async with api.session.get(public) as resp:
        assert resp.status == 200
        body = await resp.read()
        assert hashlib.sha256(body).hexdigest() == hashlib.sha256(PNG + data).hexdigest()
        assert resp.headers["Content-Type"] == "image/png"
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        assert "Content-Disposition" not in resp.headers
    async with api.session.head(public) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Length"] == str(len(PNG + data))
    async with api.session.get(public, headers={"Range": "bytes=0-7"}) as resp:
        assert resp.status == 206
        assert await resp.read() == PNG[:8]

    # Public read is read only: anonymous writes, deletes and listings still need a key.
    async with api.session.put(api.object_url("cors-public", "new.bin"), data=b"x") as resp:
        assert resp.status == 401
        assert await error_code(resp) == "Unauthorized"
    async with api.session.delete(public) as resp:
        assert resp.status == 401
    status, _, _ = await api.get_sha256("cors-public", "img.png")
    assert status == 200

    private = api.object_url("cors-private", "img.png")
    for method in ("GET", "HEAD"):
        async with api.session.request(method, private) as resp:
            assert resp.status == 401
            assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    async with api.session.get(private) as resp:
        assert await error_code(resp) == "Unauthorized"


@pytest.mark.parametrize(
    ("key", "content_type", "data"),
    [
        ("page.html", "text/html; charset=utf-8", b"<html><script>alert(1)</script></html>"),
        ("logo.svg", "image/svg+xml", b'<svg xmlns="http://www.w3.org/2000/svg"></svg>'),
        ("feed.xml", "application/xml", b"<?xml version='1.0'?><a/>"),
        ("app.js", "application/javascript", b"alert(1)"),
    ],
    ids=["html", "svg", "xml", "js"],
)
async def test_risky_types_download_as_nosniff_attachments(
    api: Api, key: str, content_type: str, data: bytes
) -> None:
    await put_bucket(api, "cors-risky", public_read=True)
    status, _ = await api.put("cors-risky", f"dir/{key}", data, **{"Content-Type": content_type})
    assert status == 201
    for headers in (api.auth, {}):
        async with api.session.get(
            api.object_url("cors-risky", f"dir/{key}"), headers=headers
        ) as resp:
            assert resp.status == 200
            assert await resp.read() == data
            assert resp.headers["X-Content-Type-Options"] == "nosniff"
            disposition = resp.headers["Content-Disposition"]
            assert disposition.startswith("attachment")
            assert key in disposition
