"""Must-show: form uploads (multipart/form-data) stream every file part to the replicas in bounded
gateway memory, name unnamed files with a generated key that keeps the extension, and are all
or nothing: a failing part takes back the files the same form already stored."""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from clusterkit import (
    Api,
    Body,
    Sampler,
    cluster_ring,
    nodes_holding,
    object_files,
    put_bucket,
    replica_versions,
    rss_bytes,
    wait_tmp_empty,
)

from shardgate.cli.dev import DevCluster

KiB = 1024
MiB = 1024 * KiB
BOUNDARY = "sgFormBoundaryq2X9bT0c"
RSS_GROWTH_LIMIT = 64 * MiB


@dataclass
class Part:
    """One form field or file, streamed from `body` (or `data`) and hashed as it goes out."""

    name: str
    body: Body | None = None
    data: bytes = b""
    filename: str | None = None
    content_type: str | None = None
    truncate: bool = False  # stop the whole form half-way through this part
    sha256: Any = field(default_factory=hashlib.sha256)
    md5: Any = field(default_factory=lambda: hashlib.md5(usedforsecurity=False))
    size: int = 0

    async def chunks(self) -> AsyncIterator[bytes]:
        source = self.body.chunks() if self.body is not None else _once(self.data)
        async for chunk in source:
            self.sha256.update(chunk)
            self.md5.update(chunk)
            self.size += len(chunk)
            yield chunk


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data


def key_field(key: str) -> Part:
    return Part("key", data=key.encode())


async def form_stream(parts: list[Part], boundary: str = BOUNDARY) -> AsyncIterator[bytes]:
    """The multipart body, produced part by part and chunk by chunk, never whole."""
    for part in parts:
        disposition = f'form-data; name="{part.name}"'
        if part.filename is not None:
            disposition += f'; filename="{part.filename}"'
        head = f"--{boundary}\r\nContent-Disposition: {disposition}\r\n"
        if part.content_type is not None:
            head += f"Content-Type: {part.content_type}\r\n"
        yield (head + "\r\n").encode()
        if part.truncate:
            async for chunk in part.chunks():
                yield chunk[: len(chunk) // 2]
                return
        async for chunk in part.chunks():
            yield chunk
        yield b"\r\n"
    yield f"--{boundary}--\r\n".encode()


async def post_form(api: Api, bucket: str, parts: list[Part]) -> tuple[int, dict[str, Any]]:
    headers = {**api.auth, "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
    async with api.session.post(
        f"{api.url}/v1/objects/{bucket}", data=form_stream(parts), headers=headers
    ) as resp:
        return resp.status, await resp.json()


async def listed_keys(api: Api, bucket: str) -> list[str]:
    async with api.session.get(f"{api.url}/v1/objects/{bucket}", headers=api.auth) as resp:
        assert resp.status == 200
        return [o["key"] for o in (await resp.json())["objects"]]


def stored_versions(cluster: DevCluster, bucket: str, key: str) -> list[str]:
    """Committed versions (.data files) of the object on any node's disk; tombstones aside."""
    return [f for f in object_files(cluster, bucket, key) if Path(f).suffix != ".ts"]


@pytest.fixture
def api(shared_cluster: DevCluster, session: aiohttp.ClientSession) -> Api:
    return Api(session, shared_cluster.url, shared_cluster.api_key)


@pytest.mark.slow
async def test_three_files_streamed_in_one_form(
    api: Api, shared_cluster: DevCluster, session: aiohttp.ClientSession
) -> None:
    await put_bucket(api, "forms-big")
    small = Part("file", Body(KiB, seed=31), filename="s.bin", content_type="application/x-raw")
    medium = Part("file", Body(5 * MiB, seed=32), filename="m.dat")
    large = Part("file", Body(200 * MiB, seed=33), filename="Holiday Clip.MP4")
    parts = [
        key_field("forms/small.bin"),
        small,
        Part("caption", data=b"a text field between files"),
        key_field("forms/ünïcode medium.dat"),
        medium,
        large,
    ]
    assert shared_cluster.gateway is not None
    pid = shared_cluster.gateway.process.pid
    baseline = rss_bytes(pid)
    with Sampler(lambda: rss_bytes(pid)) as rss:
        status, body = await post_form(api, "forms-big", parts)
    assert status == 201, body
    growth = max(rss.samples) - baseline  # type: ignore[operator]
    print(f"\ngateway RSS +{growth / MiB:.1f} MiB over {len(rss.samples)} samples, 205 MiB form")
    assert growth < RSS_GROWTH_LIMIT

    objects = body["objects"]
    assert len(objects) == 3
    assert [o["key"] for o in objects[:2]] == ["forms/small.bin", "forms/ünïcode medium.dat"]
    generated = objects[2]["key"]
    assert re.fullmatch(r"[0-9a-f]{32}\.mp4", generated), generated
    for part, record in zip([small, medium, large], objects, strict=True):
        assert part.body is not None and part.size == part.body.size
        assert record["size"] == part.size
        assert record["etag"] == part.md5.hexdigest()
        assert record["bucket"] == "forms-big"
        assert len(record["replicas"]) == 3
        got = await api.get_sha256("forms-big", record["key"])
        assert got == (200, part.sha256.hexdigest(), part.size)
        holders = nodes_holding(shared_cluster, record["etag"], part.size)
        assert holders == set(record["replicas"])
    types = [o["content_type"] for o in objects]
    assert types == ["application/x-raw", "application/octet-stream", "application/octet-stream"]
    assert sorted(await listed_keys(api, "forms-big")) == sorted(o["key"] for o in objects)


def _failing_part(kind: str) -> Part:
    text = b"just some text\n" * 50
    if kind == "type-not-allowed":
        return Part("file", data=text, filename="x.png", content_type="image/png")
    if kind == "magic-mismatch":
        return Part("file", data=b"text\x00NUL" * 10, filename="x.txt", content_type="text/plain")
    if kind == "too-large":
        return Part("file", data=text * 300, filename="x.txt", content_type="text/plain")
    assert kind == "truncated"
    return Part("file", data=text, filename="x.txt", content_type="text/plain", truncate=True)


@pytest.mark.parametrize(
    ("kind", "status", "code"),
    [
        ("type-not-allowed", 415, "UnsupportedMediaType"),
        ("magic-mismatch", 415, "UnsupportedMediaType"),
        ("too-large", 413, "EntityTooLarge"),
        ("truncated", 400, "MalformedPOSTRequest"),
    ],
)
async def test_failing_second_file_takes_back_the_first(
    api: Api,
    shared_cluster: DevCluster,
    session: aiohttp.ClientSession,
    kind: str,
    status: int,
    code: str,
) -> None:
    bucket = f"forms-fail-{kind}"
    await put_bucket(api, bucket, allowed_types=["text/plain"], max_object_size=64 * KiB)
    first = Part("file", data=b"the first file, fine on its own\n", content_type="text/plain")
    parts = [key_field("first.txt"), first, key_field("second.txt"), _failing_part(kind)]

    got_status, body = await post_form(api, bucket, parts)

    assert (got_status, body["error"]["code"]) == (status, code), body
    assert first.size > 0, "the first file was sent before the failing one"
    assert nodes_holding(shared_cluster, first.md5.hexdigest(), first.size) == set()
    for key in ("first.txt", "second.txt"):
        assert (await api.get_sha256(bucket, key))[0] == 404
        secret = shared_cluster.cluster_secret
        ring = cluster_ring(shared_cluster)
        assert await replica_versions(session, ring, secret, bucket, key) == {}
        assert stored_versions(shared_cluster, bucket, key) == []
    assert await listed_keys(api, bucket) == []
    await wait_tmp_empty(shared_cluster)


async def test_failed_form_leaves_an_overwritten_object_as_it_was(api: Api) -> None:
    bucket = "forms-overwrite"
    await put_bucket(api, bucket, allowed_types=["text/plain"])
    original = b"version one, stored before the form\n"
    assert (await api.put(bucket, "keep.txt", original, **{"Content-Type": "text/plain"}))[0] == 201
    parts = [
        key_field("keep.txt"),
        Part("file", data=b"version two from the form\n", content_type="text/plain"),
        _failing_part("type-not-allowed"),
    ]
    status, body = await post_form(api, bucket, parts)
    assert status == 415, body
    assert await api.get_sha256(bucket, "keep.txt") == (
        200,
        hashlib.sha256(original).hexdigest(),
        len(original),
    )


async def test_truncated_form_does_not_replace_an_object(api: Api) -> None:
    bucket = "forms-truncated"
    await put_bucket(api, bucket)
    original = Body(100 * KiB, seed=35).bytes()
    assert (await api.put(bucket, "doc.bin", original))[0] == 201
    parts = [
        key_field("doc.bin"),
        Part("file", Body(300 * KiB, seed=36), filename="doc.bin", truncate=True),
    ]
    status, body = await post_form(api, bucket, parts)
    assert (status, body["error"]["code"]) == (400, "MalformedPOSTRequest")
    assert await api.get_sha256(bucket, "doc.bin") == (
        200,
        hashlib.sha256(original).hexdigest(),
        len(original),
    )


@pytest.mark.parametrize(
    ("filename", "pattern"),
    [
        ("photo.JPG", r"[0-9a-f]{32}\.jpg"),
        ("backup.tar.gz", r"[0-9a-f]{32}\.gz"),
        ("../../etc/passwd.txt", r"[0-9a-f]{32}\.txt"),
        ("C:\\Users\\me\\scan.PDF", r"[0-9a-f]{32}\.pdf"),
        ("README", r"[0-9a-f]{32}"),
        (".bashrc", r"[0-9a-f]{32}"),
        ("weird.ext with space", r"[0-9a-f]{32}"),
        (None, r"[0-9a-f]{32}"),
    ],
    ids=["upper", "double", "traversal", "windows-path", "none", "dotfile", "odd", "no-filename"],
)
async def test_generated_key_keeps_only_a_sane_extension(
    api: Api, filename: str | None, pattern: str
) -> None:
    await put_bucket(api, "forms-names")
    data = f"named {filename!r}\n".encode()
    status, body = await post_form(api, "forms-names", [Part("file", data=data, filename=filename)])
    assert status == 201, body
    [record] = body["objects"]
    assert re.fullmatch(pattern, record["key"]), record["key"]
    assert await api.get_sha256("forms-names", record["key"]) == (
        200,
        hashlib.sha256(data).hexdigest(),
        len(data),
    )
