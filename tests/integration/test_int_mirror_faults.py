"""The S3 mirror under faults, with real processes: S3 down for a while (must-show 2), the gateway
SIGKILLed with jobs queued and in flight (must-show 3), and a job that fails every attempt,
is parked, and completes after `shardgate mirror retry` once the cause is fixed (must-show 5)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from clusterkit import Api, Body, MiB, labelled_metric, put_bucket, start_cluster
from s3kit import SeaweedS3, check_in_s3, hashed, idle, mirror_jobs, mirror_settings, wait_mirror

from shardgate.cli.dev import DevCluster

JOBS = "shardgate_mirror_jobs_total"


def shardgate(cluster: DevCluster, *args: str) -> str:
    """Run a CLI command against the cluster's gateway; its stdout and stderr."""
    done = subprocess.run(
        [sys.executable, "-m", "shardgate", *args, "--url", cluster.url],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "SHARDGATE_API_KEY": cluster.api_key},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout + done.stderr


@pytest.fixture
def outage_s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedS3]:
    """An S3 server of its own, to take down and bring back."""
    server = SeaweedS3(tmp_path_factory.mktemp("outage-s3"))
    server.start()
    yield server
    server.kill()  # throwaway data: no need to wait out its graceful drain


async def upload_all(
    api: Api, bucket: str, sizes: dict[str, int], seed: int
) -> dict[str, tuple[int, str]]:
    """PUT each key (6 at a time); key -> (size, md5) of what was sent."""
    limit = asyncio.Semaphore(6)
    sent: dict[str, tuple[int, str]] = {}

    async def one(n: int, key: str, size: int) -> None:
        digest = hashlib.md5()
        async with limit:
            status, answer = await api.put(
                bucket, key, hashed(Body(size, seed=seed + n).chunks(), digest)
            )
        assert status == 201, answer
        sent[key] = (size, digest.hexdigest())

    await asyncio.gather(*(one(n, key, size) for n, (key, size) in enumerate(sizes.items())))
    return sent


async def delete(api: Api, bucket: str, key: str) -> None:
    async with api.session.delete(api.object_url(bucket, key), headers=api.auth) as resp:
        assert resp.status == 204


async def test_uploads_go_on_while_s3_is_down_and_nothing_is_missing_after(
    tmp_path: Path, outage_s3: SeaweedS3, session: aiohttp.ClientSession
) -> None:
    """Must-show 2."""
    settings = mirror_settings(outage_s3, "outage/", mirror_max_attempts=1000)
    cluster = start_cluster(tmp_path, outage_s3.credentials(), **settings)
    try:
        api = Api(session, cluster.url, cluster.api_key)
        await put_bucket(api, "bkt", mirror=True)
        expected = await upload_all(api, "bkt", {f"before/{n}": 1000 * n for n in range(10)}, 0)
        await wait_mirror(api, idle, 60, "an empty queue")

        outage_s3.kill()
        sizes = {f"during/{n}": (2 * MiB if n % 10 == 0 else 3000 + n) for n in range(30)}
        expected |= await upload_all(api, "bkt", sizes, 100)
        expected |= await upload_all(api, "bkt", {"before/1": 77, "before/2": 78}, 200)
        for key in ("before/3", "before/4", "before/5"):
            await delete(api, "bkt", key)
            del expected[key]
        status = await wait_mirror(api, lambda s: s["depth"]["queued"] == 35, 10, "35 queued jobs")
        deadline = time.monotonic() + 30
        for op, jobs in (("put", 32), ("delete", 3)):  # every job has failed at least once
            while await labelled_metric(api, JOBS, op=op, result="retry") < jobs:
                assert time.monotonic() < deadline, f"{op} jobs did not retry while S3 was down"
                await asyncio.sleep(0.1)
        assert status["depth"]["failed"] == 0

        outage_s3.start()  # same ports, same data
        await wait_mirror(api, idle, 120, "an empty queue once S3 is back")
        check_in_s3(outage_s3, "outage/bkt/", expected)
        assert len(expected) == 37
    finally:
        cluster.stop()


async def test_sigkilled_gateway_leaves_every_job_done_once_in_effect(
    tmp_path: Path, s3: SeaweedS3, session: aiohttp.ClientSession
) -> None:
    """Must-show 3: 100 jobs queued, the gateway killed while some are in flight, restarted."""
    settings = mirror_settings(s3, "killed/", mirror_in_gateway=False, mirror_lease=3)
    cluster = start_cluster(tmp_path, s3.credentials(), **settings)
    try:
        api = Api(session, cluster.url, cluster.api_key)
        await put_bucket(api, "bkt", mirror=True)
        # 60 puts, 20 overwrites, 20 deletes: 100 jobs, queued while no worker runs.
        expected = await upload_all(api, "bkt", {f"k{n:02d}": MiB + n for n in range(60)}, 0)
        expected |= await upload_all(
            api, "bkt", {f"k{n:02d}": MiB + 1000 + n for n in range(20)}, 500
        )
        for n in range(40, 60):
            await delete(api, "bkt", f"k{n:02d}")
            del expected[f"k{n:02d}"]
        await wait_mirror(api, lambda s: s["depth"]["queued"] == 100, 10, "100 queued jobs")
        assert len(mirror_jobs(cluster)) == 100

        cluster.gateway.stop()  # type: ignore[union-attr]
        cluster.env["SHARDGATE_GATEWAY_MIRROR_IN_GATEWAY"] = "true"
        in_flight_ids: set[int] = set()
        for _ in range(5):  # jobs seen in flight may finish before the kill lands: go again
            cluster.start_gateway()
            deadline = time.monotonic() + 30
            while True:  # kill once several jobs are in flight (leased and unfinished)
                jobs = mirror_jobs(cluster)
                in_flight = [j for j in jobs if j[2] == "queued" and j[4] and j[4] > time.time()]
                if len(in_flight) >= 2 or (in_flight and time.monotonic() > deadline):
                    break
                assert time.monotonic() < deadline + 10, "no job was ever seen in flight"
                await asyncio.sleep(0.005)
            cluster.gateway.kill()  # type: ignore[union-attr]
            jobs = mirror_jobs(cluster)
            in_flight_ids = {j[0] for j in jobs if j[2] == "queued" and j[4] is not None}
            if in_flight_ids:
                break
        finished = sum(1 for j in jobs if j[2] != "queued")
        print(
            f"\nmust-show 3: killed with {finished} jobs finished, {len(in_flight_ids)} in flight"
        )
        assert finished < 100 and in_flight_ids

        cluster.start_gateway()
        api = Api(session, cluster.url, cluster.api_key)
        await wait_mirror(api, idle, 120, "an empty queue after the restart")
        jobs = mirror_jobs(cluster)
        assert len(jobs) == 100
        assert {state for _, _, state, _, _ in jobs} <= {"done", "superseded"}
        # The jobs in flight at the kill were taken again once their lease ran out.
        assert all(attempts >= 2 for id_, _, _, attempts, _ in jobs if id_ in in_flight_ids)
        check_in_s3(s3, "killed/bkt/", expected)
        assert len(expected) == 40
    finally:
        cluster.stop()


async def test_a_job_failing_every_attempt_is_parked_then_retried_by_command(
    tmp_path: Path, s3: SeaweedS3, session: aiohttp.ClientSession
) -> None:
    """Must-show 5: the target bucket is missing; every attempt fails until it is created."""
    target = f"parked-{os.getpid()}"
    settings = mirror_settings(s3, "", mirror_bucket=target, mirror_max_attempts=3)
    cluster = start_cluster(tmp_path, s3.credentials(), **settings)
    try:
        api = Api(session, cluster.url, cluster.api_key)
        await put_bucket(api, "bkt", mirror=True)
        status, _ = await api.put("bkt", "doc.txt", b"needs a bucket")
        assert status == 201
        status = await wait_mirror(api, lambda s: s["depth"]["failed"] == 1, 30, "a parked job")
        assert status["depth"]["queued"] == 0
        (failure,) = status["recent_failures"]
        assert failure["key"] == "doc.txt" and failure["attempts"] == 3
        assert "NoSuchBucket" in failure["last_error"]
        deadline = time.monotonic() + 10
        while await labelled_metric(api, "shardgate_mirror_queue_depth", state="failed") != 1:
            assert time.monotonic() < deadline, "the failed gauge never showed the parked job"
            await asyncio.sleep(0.1)
        assert await labelled_metric(api, JOBS, op="put", result="retry") == 2
        assert await labelled_metric(api, JOBS, op="put", result="failed") == 1
        async with session.head(api.object_url("bkt", "doc.txt"), headers=api.auth) as resp:
            assert resp.headers["X-Shardgate-Mirror-State"] == "failed"
            assert "NoSuchBucket" in resp.headers["X-Shardgate-Mirror-Error"]
        shown = shardgate(cluster, "mirror", "status")
        assert "failed   1" in shown and f"job {failure['id']}: put bkt/doc.txt" in shown

        s3.client().create_bucket(Bucket=target)  # the cause, fixed
        assert "requeued 1 job(s)" in shardgate(cluster, "mirror", "retry", "--all")
        await wait_mirror(api, idle, 30, "an empty queue after the retry")
        data = b"needs a bucket"
        found = s3.client().head_object(Bucket=target, Key="bkt/doc.txt")
        assert found["ETag"].strip('"') == hashlib.md5(data).hexdigest()
        async with session.get(api.object_url("bkt", "doc.txt"), headers=api.auth) as resp:
            assert resp.headers["X-Shardgate-Mirror-State"] == "synced"
        assert await labelled_metric(api, JOBS, op="put", result="done") == 1
        assert "requeued 0 job(s)" in shardgate(cluster, "mirror", "retry", "--all")
    finally:
        cluster.stop()
