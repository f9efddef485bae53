"""Must-show: the bulkhead refuses uploads past the gateway's limit (503) or a key's limit (429)
at once, with Retry-After, while health, metrics and reads stay fast; a sender that goes idle
is cut off (408) and leaves nothing on the nodes. Real processes with non-default limits."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from clusterkit import (
    Api,
    Body,
    cluster_ring,
    create_key,
    labelled_metric,
    replica_versions,
    start_cluster,
    wait_for_metric,
    wait_tmp_empty,
)

from ring import object_hash, partition_of
from shardgate.cli.dev import DevCluster

KiB = 1024
FAST = 0.100  # seconds: "at once" and "keeps working" both mean well under this
FIRST = Body(64 * KiB, seed=41).bytes()
REST = Body(192 * KiB, seed=42).bytes()


@pytest.fixture(scope="module")
def busy_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevCluster]:
    """Eight uploads at a time for the whole gateway; no key comes near its own limit."""
    cluster = start_cluster(tmp_path_factory.mktemp("busy"), upload_limit=8, key_upload_limit=1000)
    yield cluster
    cluster.stop()


@pytest.fixture(scope="module")
def keyed_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevCluster]:
    """Two uploads at a time per key, plenty for the gateway, and a one-second idle limit."""
    cluster = start_cluster(
        tmp_path_factory.mktemp("keyed"),
        upload_limit=128,
        key_upload_limit=2,
        body_idle_timeout=1,
    )
    yield cluster
    cluster.stop()


@dataclass
class Upload:
    """One upload whose body waits on `release` after its first chunk; timings in perf_counter."""

    key: str
    release: asyncio.Event
    trickle: float | None = None  # send a byte this often while held (chunked, never idle)
    sent_at: float = 0.0
    answered_at: float = 0.0
    status: int = 0
    body: dict[str, Any] = field(default_factory=dict)
    retry_after: str | None = None
    sha256: Any = field(default_factory=hashlib.sha256)
    size: int = 0

    @property
    def latency(self) -> float:
        return self.answered_at - self.sent_at

    def _sent(self, chunk: bytes) -> bytes:
        self.sha256.update(chunk)
        self.size += len(chunk)
        return chunk

    async def chunks(self) -> AsyncIterator[bytes]:
        self.sent_at = time.perf_counter()
        yield self._sent(FIRST)
        while not self.release.is_set():
            try:
                await asyncio.wait_for(self.release.wait(), self.trickle)
            except TimeoutError:
                yield self._sent(b".")
        yield self._sent(REST)

    async def run(self, api: Api, bucket: str, token: str) -> Upload:
        headers = {"Authorization": f"Bearer {token}"}
        if self.trickle is None:
            headers["Content-Length"] = str(len(FIRST) + len(REST))
        async with api.session.put(
            api.object_url(bucket, self.key), data=self.chunks(), headers=headers
        ) as resp:
            self.answered_at = time.perf_counter()
            self.status = resp.status
            self.retry_after = resp.headers.get("Retry-After")
            self.body = await resp.json()
        return self


async def timed(session: aiohttp.ClientSession, url: str, headers: dict[str, str]) -> float:
    started = time.perf_counter()
    async with session.get(url, headers=headers) as resp:
        await resp.read()
        assert resp.status == 200, url
    return time.perf_counter() - started


async def tenant_key(api: Api, name: str) -> str:
    return str((await create_key(api, name, ["read", "write"], None))["key"])


async def nothing_on_nodes(
    cluster: DevCluster, session: aiohttp.ClientSession, bucket: str, key: str
) -> None:
    ring = cluster_ring(cluster)
    assert await replica_versions(session, ring, cluster.cluster_secret, bucket, key) == {}
    obj_hash = object_hash(bucket, key)
    partition = str(partition_of(obj_hash, ring.partition_power))
    for node_id in cluster.node_ids:
        assert not (cluster.data / node_id / "objects" / partition / obj_hash).exists()
    await wait_tmp_empty(cluster)


async def test_gateway_limit_refuses_at_once_and_keeps_the_rest_responsive(
    busy_cluster: DevCluster, session: aiohttp.ClientSession
) -> None:
    api = Api(session, busy_cluster.url, busy_cluster.api_key)
    await api.create_bucket("adm-busy")
    probe = Body(100 * KiB, seed=43)
    assert (await api.put("adm-busy", "probe.bin", probe.bytes()))[0] == 201

    release = asyncio.Event()
    uploads = [Upload(f"held/{i:02d}.bin", release) for i in range(30)]
    tasks = [asyncio.create_task(u.run(api, "adm-busy", busy_cluster.api_key)) for u in uploads]
    try:
        deadline = time.monotonic() + 15
        while sum(t.done() for t in tasks) < 22 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        await wait_for_metric(api, "shardgate_gateway_uploads_in_progress", 8)
        refused = [u for u, t in zip(uploads, tasks, strict=True) if t.done()]
        held = [u for u, t in zip(uploads, tasks, strict=True) if not t.done()]
        assert (len(refused), len(held)) == (22, 8)
        for upload in refused:
            assert upload.status == 503, upload.body
            assert upload.body["error"]["code"] == "ServiceUnavailable"
            assert upload.retry_after is not None and int(upload.retry_after) >= 1
        latencies = sorted(u.latency for u in refused)
        print(
            f"\n503 latencies: max {latencies[-1] * 1e3:.1f} ms, median {latencies[11] * 1e3:.1f}"
        )
        assert latencies[-1] < FAST, latencies

        # Full of uploads: health, metrics and reads still answer at once; uploads still refused.
        url = api.object_url("adm-busy", "probe.bin")
        probes = {
            f"{api.url}/healthz": {},
            f"{api.url}/readyz": {},
            f"{api.url}/metrics": {},
            url: api.auth,
        }
        took: dict[str, list[float]] = {target: [] for target in probes}
        for _ in range(7):
            for target, headers in probes.items():
                took[target].append(await timed(session, target, headers))
        for target, times in took.items():
            times.sort()
            print(f"{target.rsplit('/', 1)[-1]}: " + " ".join(f"{t * 1e3:.0f}" for t in times))
            # A request queued behind the held uploads would never finish; one that is served
            # answers at once. The median is held to FAST, a single sample to 3x (shared CI box).
            assert times[len(times) // 2] < FAST, (target, times)
            assert times[-1] < 3 * FAST, (target, times)
        assert await api.get_sha256("adm-busy", "probe.bin") == (200, probe.sha256(), probe.size)
        extra = await Upload("held/extra.bin", release).run(api, "adm-busy", busy_cluster.api_key)
        assert extra.status == 503 and extra.latency < FAST
        rejections = await labelled_metric(
            api,
            "shardgate_gateway_admission_rejections_total",
            kind="upload",
            code="ServiceUnavailable",
        )
        assert rejections == 23
        assert sum(t.done() for t in tasks) == 22, "the eight admitted uploads are still held"
    finally:
        release.set()
        await asyncio.gather(*tasks, return_exceptions=True)

    for upload in held:
        assert upload.status == 201, upload.body
        assert upload.body["size"] == len(FIRST) + len(REST)
        got = await api.get_sha256("adm-busy", upload.key)
        assert got == (200, upload.sha256.hexdigest(), upload.size)
    for upload in refused:
        assert (await api.get_sha256("adm-busy", upload.key))[0] == 404
    await wait_for_metric(api, "shardgate_gateway_uploads_in_progress", 0)
    # Every slot came back: eight more uploads fit at once.
    again = [Upload(f"again/{i}.bin", asyncio.Event()) for i in range(8)]
    for upload in again:
        upload.release.set()
    done = await asyncio.gather(*(u.run(api, "adm-busy", busy_cluster.api_key) for u in again))
    assert [u.status for u in done] == [201] * 8


async def test_key_limit_slows_one_key_while_another_proceeds(
    keyed_cluster: DevCluster, session: aiohttp.ClientSession
) -> None:
    api = Api(session, keyed_cluster.url, keyed_cluster.api_key)
    await api.create_bucket("adm-keys")
    key_a, key_b = await tenant_key(api, "tenant-a"), await tenant_key(api, "tenant-b")

    release = asyncio.Event()
    # Held longer than the idle limit would allow a silent sender: these keep trickling.
    held = [Upload(f"a/{i}.bin", release, trickle=0.2) for i in range(2)]
    tasks = [asyncio.create_task(u.run(api, "adm-keys", key_a)) for u in held]
    try:
        await wait_for_metric(api, "shardgate_gateway_uploads_in_progress", 2)
        third = await Upload("a/third.bin", release).run(api, "adm-keys", key_a)
        assert third.status == 429, third.body
        assert third.body["error"]["code"] == "SlowDown"
        assert third.retry_after is not None and int(third.retry_after) >= 1
        assert third.latency < FAST

        other = Body(300 * KiB, seed=44)
        async with session.put(
            api.object_url("adm-keys", "b/one.bin"),
            data=other.bytes(),
            headers={"Authorization": f"Bearer {key_b}"},
        ) as resp:
            assert resp.status == 201, await resp.text()
        assert await api.get_sha256("adm-keys", "b/one.bin") == (200, other.sha256(), other.size)
        assert not any(t.done() for t in tasks), "key A's uploads must still be in progress"
        rejected = await labelled_metric(
            api, "shardgate_gateway_admission_rejections_total", kind="upload", code="SlowDown"
        )
        assert rejected == 1
    finally:
        release.set()
        await asyncio.gather(*tasks, return_exceptions=True)

    for upload in held:
        assert upload.status == 201, upload.body
        got = await api.get_sha256("adm-keys", upload.key)
        assert got == (200, upload.sha256.hexdigest(), upload.size)
    assert (await api.get_sha256("adm-keys", "a/third.bin"))[0] == 404
    again = Upload("a/again.bin", asyncio.Event())
    again.release.set()
    assert (await again.run(api, "adm-keys", key_a)).status == 201


async def test_disconnected_uploads_free_their_slots_and_leave_nothing(
    busy_cluster: DevCluster, session: aiohttp.ClientSession
) -> None:
    api = Api(session, busy_cluster.url, busy_cluster.api_key)
    await api.create_bucket("adm-gone")
    release = asyncio.Event()
    gone = [Upload(f"gone/{i}.bin", release) for i in range(8)]
    tasks = [asyncio.create_task(u.run(api, "adm-gone", busy_cluster.api_key)) for u in gone]
    await wait_for_metric(api, "shardgate_gateway_uploads_in_progress", 8)
    refused = await Upload("gone/refused.bin", release).run(api, "adm-gone", busy_cluster.api_key)
    assert refused.status == 503

    for task in tasks:  # the clients go away mid-body: their connections close
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await wait_for_metric(api, "shardgate_gateway_uploads_in_progress", 0, timeout=5)

    fresh = [Upload(f"fresh/{i}.bin", asyncio.Event()) for i in range(8)]
    for upload in fresh:
        upload.release.set()
    done = await asyncio.gather(*(u.run(api, "adm-gone", busy_cluster.api_key) for u in fresh))
    assert [u.status for u in done] == [201] * 8
    for upload in gone:
        assert (await api.get_sha256("adm-gone", upload.key))[0] == 404
        await nothing_on_nodes(busy_cluster, session, "adm-gone", upload.key)


async def _idle_form(api: Api, bucket: str, key: str) -> tuple[int, dict[str, Any]]:
    boundary = "sgIdleBoundary"

    async def body() -> AsyncIterator[bytes]:
        yield (
            f'--{boundary}\r\nContent-Disposition: form-data; name="key"\r\n\r\n{key}\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="f.bin"\r\n'
            "\r\n"
        ).encode()
        yield FIRST
        await asyncio.Event().wait()

    headers = {**api.auth, "Content-Type": f"multipart/form-data; boundary={boundary}"}
    async with api.session.post(
        f"{api.url}/v1/objects/{bucket}", data=body(), headers=headers
    ) as r:
        return r.status, await r.json()


async def _idle_put(api: Api, bucket: str, key: str, declared: bool) -> tuple[int, dict[str, Any]]:
    async def body() -> AsyncIterator[bytes]:
        yield FIRST
        await asyncio.Event().wait()

    headers = dict(api.auth)
    if declared:
        headers["Content-Length"] = str(len(FIRST) + len(REST))
    async with api.session.put(api.object_url(bucket, key), data=body(), headers=headers) as r:
        return r.status, await r.json()


@pytest.mark.parametrize("how", ["put-declared", "put-chunked", "form"])
async def test_idle_sender_is_cut_off_and_leaves_nothing(
    keyed_cluster: DevCluster, session: aiohttp.ClientSession, how: str
) -> None:
    api = Api(session, keyed_cluster.url, keyed_cluster.api_key)
    await api.create_bucket("adm-idle")
    key = f"idle/{how}.bin"
    started = time.perf_counter()
    if how == "form":
        status, body = await _idle_form(api, "adm-idle", key)
    else:
        status, body = await _idle_put(api, "adm-idle", key, declared=how == "put-declared")
    elapsed = time.perf_counter() - started
    assert (status, body["error"]["code"]) == (408, "RequestTimeout"), body
    assert 1.0 <= elapsed < 5.0, elapsed
    assert (await api.get_sha256("adm-idle", key))[0] == 404
    await nothing_on_nodes(keyed_cluster, session, "adm-idle", key)
    await wait_for_metric(api, "shardgate_gateway_uploads_in_progress", 0)
