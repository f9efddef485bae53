"""The S3 mirror end to end: a real gateway and nodes, a real SeaweedFS S3 server, boto3 to look
at what S3 holds. Issue 8's must-shows 1 (200 mixed objects, deletes), 4 (per-key order) and
the mirror's state in HEAD, GET and listings; `mirror status` and `mirror run` from the CLI."""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest
from clusterkit import Api, Body, MiB, gateway_env, put_bucket, start_cluster
from s3kit import SeaweedS3, check_in_s3, hashed, idle, mirror_settings, wait_mirror

from shardgate.cli.dev import DevCluster

PREFIX = "int/"


@pytest.fixture(scope="module")
def mirrored(tmp_path_factory: pytest.TempPathFactory, s3: SeaweedS3) -> Iterator[DevCluster]:
    cluster = start_cluster(
        tmp_path_factory.mktemp("mirrored"), s3.credentials(), **mirror_settings(s3, PREFIX)
    )
    yield cluster
    cluster.stop()


@pytest.fixture
async def api(mirrored: DevCluster, session: aiohttp.ClientSession) -> AsyncIterator[Api]:
    yield Api(session, mirrored.url, mirrored.api_key)


def sizes(count: int, seed: int) -> list[int]:
    """Mostly small objects, some of a few MiB, a few large up to 100 MiB."""
    rng = random.Random(seed)
    out = [100 * MiB, 40 * MiB, 24 * MiB, 0]
    out += [rng.randint(MiB, 8 * MiB) for _ in range(8)]
    out += [rng.randint(1, 256 * 1024) for _ in range(count - len(out))]
    return out


async def multipart_upload(api: Api, bucket: str, key: str, parts: list[bytes]) -> None:
    """An object through POST /v1/uploads, parts, complete (published by end_upload)."""
    async with api.session.post(
        f"{api.url}/v1/uploads", json={"bucket": bucket, "key": key}, headers=api.auth
    ) as resp:
        assert resp.status == 201, await resp.text()
        upload_id = (await resp.json())["upload_id"]
    listed = []
    for number, data in enumerate(parts, 1):
        url = f"{api.url}/v1/uploads/{upload_id}/parts/{number}"
        async with api.session.put(url, data=data, headers=api.auth) as resp:
            assert resp.status in (200, 201), await resp.text()
            listed.append({"part_number": number, "etag": (await resp.json())["etag"]})
    async with api.session.post(
        f"{api.url}/v1/uploads/{upload_id}/complete", json={"parts": listed}, headers=api.auth
    ) as resp:
        assert resp.status in (200, 201), await resp.text()


async def test_200_mixed_objects_reach_s3_intact_and_deletes_follow(
    api: Api, s3: SeaweedS3
) -> None:
    """Must-show 1."""
    await put_bucket(api, "mixed", mirror=True)
    expected: dict[str, tuple[int, str]] = {}  # key -> (size, md5)
    limit = asyncio.Semaphore(6)

    async def upload(n: int, size: int) -> None:
        digest = hashlib.md5()
        async with limit:
            status, answer = await api.put(
                "mixed", f"obj/{n:03d}", hashed(Body(size, seed=n).chunks(), digest)
            )
        assert status == 201, answer
        expected[f"obj/{n:03d}"] = (size, digest.hexdigest())

    started = time.monotonic()
    await asyncio.gather(*(upload(n, size) for n, size in enumerate(sizes(198, seed=1))))
    parts = [Body(5 * MiB, seed=500).bytes(), Body(MiB + 7, seed=501).bytes()]
    await multipart_upload(api, "mixed", "obj/multipart", parts)
    whole = b"".join(parts)
    expected["obj/multipart"] = (len(whole), hashlib.md5(whole).hexdigest())
    form = aiohttp.FormData()
    form.add_field("key", "obj/form")
    form.add_field("file", b"form bytes", filename="f.txt", content_type="text/plain")
    async with api.session.post(f"{api.url}/v1/objects/mixed", data=form, headers=api.auth) as r:
        assert r.status == 201, await r.text()
    expected["obj/form"] = (10, hashlib.md5(b"form bytes").hexdigest())
    uploaded = time.monotonic()

    status = await wait_mirror(api, idle, 240, "an empty queue")
    synced = time.monotonic()
    total = sum(size for size, _ in expected.values())
    print(
        f"\nmust-show 1: {len(expected)} objects, {total / MiB:.0f} MiB, uploaded in"
        f" {uploaded - started:.1f} s; all in S3 {synced - uploaded:.1f} s after the last upload"
    )
    assert len(expected) == 200
    assert status["lag_seconds"] == 0
    check_in_s3(s3, f"{PREFIX}mixed/", expected)

    # Every object says where it is, in the listing and in HEAD and GET headers.
    async with api.session.get(f"{api.url}/v1/objects/mixed?limit=1000", headers=api.auth) as r:
        listed = (await r.json())["objects"]
    assert len(listed) == 200
    assert {o["mirror"]["state"] for o in listed} == {"synced"}
    assert all(o["mirror"]["url"].endswith(f"/{PREFIX}mixed/{o['key']}") for o in listed)
    async with api.session.head(api.object_url("mixed", "obj/005"), headers=api.auth) as r:
        assert r.headers["X-Shardgate-Mirror-State"] == "synced"
        assert r.headers["X-Shardgate-Mirror-Url"] == (
            f"{s3.endpoint}/{s3.bucket}/{PREFIX}mixed/obj/005"
        )

    doomed = sorted(expected)[::10]  # 20 keys, small and large
    for key in doomed:
        async with api.session.delete(api.object_url("mixed", key), headers=api.auth) as r:
            assert r.status == 204
        del expected[key]
    await wait_mirror(api, idle, 60, "an empty queue after the deletes")
    check_in_s3(s3, f"{PREFIX}mixed/", expected)


async def test_later_changes_of_a_key_are_never_undone_by_older_jobs(
    api: Api, s3: SeaweedS3
) -> None:
    """Must-show 4: put, overwrite, delete leaves nothing; overwrite then put leaves the newest."""
    await put_bucket(api, "order", mirror=True)
    newest: dict[str, tuple[int, str]] = {}

    async def put_overwrite_delete(n: int) -> None:
        for round_ in range(2):
            status, _ = await api.put("order", f"gone/{n}", f"v{round_} of {n}".encode())
            assert status == 201
        async with api.session.delete(api.object_url("order", f"gone/{n}"), headers=api.auth) as r:
            assert r.status == 204

    async def overwrite_then_put(n: int) -> None:
        for round_ in range(3):
            data = f"v{round_} of {n}".encode() * (1 + round_ * 1000)
            status, _ = await api.put("order", f"kept/{n}", data)
            assert status == 201
        newest[f"kept/{n}"] = (len(data), hashlib.md5(data).hexdigest())

    await asyncio.gather(
        *(put_overwrite_delete(n) for n in range(15)), *(overwrite_then_put(n) for n in range(15))
    )
    await wait_mirror(api, idle, 60, "an empty queue")
    check_in_s3(s3, f"{PREFIX}order/", newest)


def shardgate(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shardgate", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
        check=False,
    )


async def test_mirror_run_as_its_own_process(
    tmp_path: Path, s3: SeaweedS3, session: aiohttp.ClientSession
) -> None:
    """`mirror_in_gateway = false`: jobs wait in the outbox until `shardgate mirror run`."""
    settings = mirror_settings(s3, "standalone/", mirror_in_gateway=False)
    cluster = start_cluster(tmp_path, s3.credentials(), **settings)
    runner = None
    try:
        api = Api(session, cluster.url, cluster.api_key)
        await put_bucket(api, "solo", mirror=True)
        status, _ = await api.put("solo", "a.txt", b"from a separate process")
        assert status == 201
        await asyncio.sleep(0.5)  # a worker polling every 0.1 s would have taken it by now
        assert (await wait_mirror(api, lambda s: True, 1, ""))["depth"]["queued"] == 1
        assert (await wait_mirror(api, lambda s: True, 1, ""))["workers"] == 0
        env = {**cluster.env, **s3.credentials(), **gateway_env(**settings)}
        runner = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "shardgate",
                "mirror",
                "run",
                "--data",
                str(cluster.data / "gateway"),
                "--ring",
                str(cluster.ring_path),
            ],
            env={**os.environ, **env},
        )
        await wait_mirror(api, idle, 60, "an empty queue")
        data = b"from a separate process"
        check_in_s3(s3, "standalone/solo/", {"a.txt": (len(data), hashlib.md5(data).hexdigest())})
        shown = shardgate("mirror", "status", "--url", cluster.url, "--admin-key", cluster.api_key)
        assert shown.returncode == 0, shown.stderr
        assert "queued   0" in shown.stdout and "failed   0" in shown.stdout
    finally:
        if runner is not None:
            runner.terminate()
            assert runner.wait(30) == 0
        cluster.stop()
