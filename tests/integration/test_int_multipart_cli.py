"""Must-show 3 and downloads: `shardgate put` killed halfway through a 512 MiB upload finishes
when run again and the gateway stores every part exactly once; `shardgate get` resumes an
interrupted download from FILE.partial and the gateway sends only the rest."""

from __future__ import annotations

import asyncio
import hashlib
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from clusterkit import (
    Api,
    cli,
    cli_env,
    md5_hex,
    metric_samples,
    run_cli,
    scratch_cluster,
    write_file,
)

from shardgate.cli.dev import DevCluster
from shardgate.transfer import Gateway, Uploader

MiB = 1024 * 1024
PART = 16 * MiB
BIG = 512 * MiB


def file_md5(path: Path, offset: int, length: int) -> str:
    with path.open("rb") as fh:
        fh.seek(offset)
        return md5_hex(fh.read(length))


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(MiB):
            digest.update(chunk)
    return digest.hexdigest()


async def metrics(session: aiohttp.ClientSession, url: str) -> dict[str, float]:
    return {
        sample.name: sample.value
        for sample in await metric_samples(session, url)
        if not sample.labels
    }


async def call(api: Api, method: str, path: str, **kwargs: Any) -> Any:
    async with api.session.request(method, api.url + path, headers=api.auth, **kwargs) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json()


@pytest.fixture
def big_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevCluster]:
    """A cluster of its own whose replicas are removed afterwards."""
    yield from scratch_cluster(tmp_path_factory, "cli-cluster")


@pytest.fixture
def source(tmp_path: Path) -> Iterator[Path]:
    """Where the test writes its 512 MiB; removed afterwards rather than kept by pytest."""
    path = tmp_path / "half.bin"
    yield path
    path.unlink(missing_ok=True)


@pytest.mark.slow
async def test_killed_put_resumes_and_every_part_is_stored_once(
    big_cluster: DevCluster, session: aiohttp.ClientSession, source: Path
) -> None:
    api = Api(session, big_cluster.url, big_cluster.api_key)
    await api.create_bucket("resume")
    sha256 = write_file(source, BIG, seed=31)
    count = BIG // PART
    before = await metrics(session, big_cluster.url)
    put = ("put", str(source), "resume/half.bin", "--part-size", "16M", "--parallel", "4")

    first = subprocess.Popen(
        cli(*put, "--quiet"),
        env=cli_env(big_cluster),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        held: list[dict[str, Any]] = []
        while len(held) < count // 2:
            assert first.poll() is None, "the first put ended before it could be killed"
            listed = await call(api, "GET", "/v1/uploads", params={"bucket": "resume"})
            if listed["uploads"]:
                upload_id = listed["uploads"][0]["upload_id"]
                held = (await call(api, "GET", f"/v1/uploads/{upload_id}"))["parts"]
            await asyncio.sleep(0.05)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()

    listed = await call(api, "GET", "/v1/uploads", params={"bucket": "resume"})
    assert [u["upload_id"] for u in listed["uploads"]] == [upload_id]
    held = (await call(api, "GET", f"/v1/uploads/{upload_id}"))["parts"]
    assert count // 2 <= len(held) < count
    for part in held:  # only whole parts were stored; the ones cut off by the kill were not
        offset = (part["part_number"] - 1) * PART
        assert part["size"] == PART
        assert part["etag"] == file_md5(source, offset, PART)

    second = await run_cli(big_cluster, *put)
    assert second.returncode == 0, second.stderr
    assert second.stdout.startswith(f"resume/half.bin  {BIG} bytes  etag ")
    assert second.stdout.strip().endswith(f"-{count}")
    assert "100.0%" in second.stderr  # the progress line, resumed parts counted as done

    after = await metrics(session, big_cluster.url)
    stored = after["shardgate_gateway_parts_received_total"]
    stored -= before["shardgate_gateway_parts_received_total"]
    received = after["shardgate_gateway_received_bytes_total"]
    received -= before["shardgate_gateway_received_bytes_total"]
    print(
        f"\nkilled with {len(held)} of {count} parts stored; parts stored over both runs "
        f"{stored:.0f}; bytes received {received / MiB:.0f} MiB for a {BIG // MiB} MiB file"
    )
    assert stored == count
    assert received <= BIG + 4 * PART  # at most the parts in flight at the kill went twice
    assert (await call(api, "GET", "/v1/uploads", params={"bucket": "resume"}))["uploads"] == []
    assert await api.get_sha256("resume", "half.bin") == (200, sha256, BIG)


@pytest.fixture
def api(shared_cluster: DevCluster, session: aiohttp.ClientSession) -> Api:
    return Api(session, shared_cluster.url, shared_cluster.api_key)


async def multipart_object(api: Api, source: Path, key: str) -> str:
    """Upload a file in 5 MiB parts; its quoted ETag."""
    await api.create_bucket("downloads")
    gateway = Gateway(api.session, api.url, api.auth["Authorization"].removeprefix("Bearer "))
    uploader = Uploader(gateway, part_size=5 * MiB, parallel=2, quiet=True)
    record = await uploader.upload(source, "downloads", key, "application/octet-stream")
    assert record["etag"].endswith("-3")
    return f'"{record["etag"]}"'


def interrupted(target: Path, source: Path, have: int, etag: str) -> None:
    """Leave what a `shardgate get` killed after `have` bytes leaves: FILE.partial + its ETag."""
    with source.open("rb") as fh:
        target.with_name(target.name + ".partial").write_bytes(fh.read(have))
    target.with_name(target.name + ".partial.etag").write_text(etag)


async def test_get_resumes_from_the_partial_file_and_fetches_only_the_rest(
    api: Api, shared_cluster: DevCluster, tmp_path: Path
) -> None:
    source = tmp_path / "source.bin"
    size = 13 * MiB
    write_file(source, size, seed=41)
    etag = await multipart_object(api, source, "resumed.bin")
    target = tmp_path / "resumed.bin"
    have = 7 * MiB + 3  # inside the second part
    interrupted(target, source, have, etag)

    before = await metrics(api.session, api.url)
    got = await run_cli(shared_cluster, "get", "downloads/resumed.bin", str(target), "--quiet")
    assert got.returncode == 0, got.stderr
    after = await metrics(api.session, api.url)

    sent = (
        after["shardgate_gateway_sent_bytes_total"] - before["shardgate_gateway_sent_bytes_total"]
    )
    assert sent == size - have
    assert sha256_of(target) == sha256_of(source)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["resumed.bin", "source.bin"]


async def test_get_finishes_a_partial_file_that_is_already_whole(
    api: Api, shared_cluster: DevCluster, tmp_path: Path
) -> None:
    source = tmp_path / "source.bin"
    write_file(source, 11 * MiB, seed=42)
    etag = await multipart_object(api, source, "whole.bin")
    target = tmp_path / "whole.bin"
    interrupted(target, source, 11 * MiB, etag)  # killed after the last byte, before the rename

    got = await run_cli(shared_cluster, "get", "downloads/whole.bin", str(target), "--quiet")
    assert got.returncode == 0, got.stderr
    assert sha256_of(target) == sha256_of(source)


async def test_get_starts_over_when_the_object_changed_since_the_partial_file(
    api: Api, shared_cluster: DevCluster, tmp_path: Path
) -> None:
    old, new = tmp_path / "old.bin", tmp_path / "new.bin"
    write_file(old, 12 * MiB, seed=43)
    write_file(new, 12 * MiB, seed=44)
    old_etag = await multipart_object(api, old, "changed.bin")
    target = tmp_path / "changed.bin"
    interrupted(target, old, 6 * MiB, old_etag)
    await multipart_object(api, new, "changed.bin")

    got = await run_cli(shared_cluster, "get", "downloads/changed.bin", str(target), "--quiet")
    assert got.returncode == 0, got.stderr
    assert sha256_of(target) == sha256_of(new)
