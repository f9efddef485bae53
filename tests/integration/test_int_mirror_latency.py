"""Must-show 6: while the mirror pushes a 1 GiB object to S3, the gateway keeps answering small
uploads and downloads under 100 ms at the median (boto3 never runs on the event loop), and its
memory stays bounded by the part size, not the object's size."""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import aiohttp
import pytest
from clusterkit import Api, Body, MiB, Sampler, put_bucket, rss_bytes, start_cluster
from s3kit import SeaweedS3, mirror_jobs, mirror_settings

GiB = 1024 * MiB


async def mirror_state(api: Api, bucket: str, key: str) -> str:
    async with api.session.head(api.object_url(bucket, key), headers=api.auth) as resp:
        return resp.headers["X-Shardgate-Mirror-State"]


@pytest.mark.slow
async def test_gateway_stays_quick_while_a_1_gib_object_is_mirrored(
    tmp_path: Path, s3: SeaweedS3, session: aiohttp.ClientSession
) -> None:
    cluster = start_cluster(tmp_path, s3.credentials(), **mirror_settings(s3, "latency/"))
    try:
        api = Api(session, cluster.url, cluster.api_key)
        await put_bucket(api, "huge", mirror=True)
        await put_bucket(api, "probe")
        status, answer = await api.put("huge", "one.bin", Body(GiB, seed=6).chunks())
        assert status == 201, answer
        assert await mirror_state(api, "huge", "one.bin") == "pending"
        pid = cluster.gateway.process.pid  # type: ignore[union-attr]
        latencies: list[float] = []
        payload = b"p" * 4096
        started = time.monotonic()
        with Sampler(lambda: rss_bytes(pid), interval=0.1) as rss:
            n = 0
            while await mirror_state(api, "huge", "one.bin") == "pending":
                assert time.monotonic() - started < 300, "the 1 GiB object was never mirrored"
                for _ in range(5):
                    n += 1
                    t0 = time.monotonic()
                    status, _ = await api.put("probe", f"p{n % 50}", payload)
                    latencies.append(time.monotonic() - t0)
                    assert status == 201
                    t0 = time.monotonic()
                    async with session.get(
                        api.object_url("probe", f"p{n % 50}"), headers=api.auth
                    ) as r:
                        assert await r.read() == payload
                    latencies.append(time.monotonic() - t0)
        took = time.monotonic() - started
        assert await mirror_state(api, "huge", "one.bin") == "synced"
        stored = s3.client().head_object(Bucket=s3.bucket, Key="latency/huge/one.bin")
        assert stored["ContentLength"] == GiB
        assert stored["Metadata"]["shardgate-etag"] == answer["etag"]
        # One attempt, though it outlasted the 5 s lease several times: the lease was renewed.
        assert [(op, state, attempts) for _, op, state, attempts, _ in mirror_jobs(cluster)] == [
            ("put", "done", 1)
        ]
        samples = [int(v) for v in rss.samples if isinstance(v, int)]
        p50 = statistics.median(latencies)
        p95 = statistics.quantiles(latencies, n=20)[-1]
        print(
            f"\nmust-show 6: 1 GiB mirrored in {took:.1f} s ({GiB / MiB / took:.0f} MiB/s);"
            f" {len(latencies)} small requests meanwhile: p50 {p50 * 1000:.1f} ms,"
            f" p95 {p95 * 1000:.1f} ms; gateway RSS {min(samples) / MiB:.0f}"
            f" -> {max(samples) / MiB:.0f} MiB"
        )
        assert len(latencies) >= 20
        assert p50 < 0.1
        assert max(samples) - min(samples) < 128 * MiB  # parts in flight, not the object
    finally:
        cluster.stop()
