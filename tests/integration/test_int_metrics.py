"""Issue 10, must-show 1: after real traffic through a gateway and three node processes, every
listed series is on /metrics with values that follow from that traffic, labels never carry a
raw key, and the access log names each request (text mode here, JSON in test_int_request_ids)."""

from __future__ import annotations

import asyncio
import re
import resource
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import aiohttp
import pytest
from clusterkit import Api, Body, metric_samples, start_logged_cluster, wait_for_metric
from prometheus_client.samples import Sample

from shardgate.cli.dev import DevCluster

KiB = 1024
BUCKET = "observed"
MARKER = "rawkeymarker"  # part of every key: it must never show up in a label
SIZES = [1, 1000, 64 * KiB, 300 * KiB + 7, 1024 * KiB + 3]
SLOW = [Body(64 * KiB, seed=90).bytes(), Body(32 * KiB, seed=91).bytes()]
OBJECT_ROUTE = "/v1/objects/{bucket}/{key}"
NODE_OBJECT_ROUTE = "/internal/v1/objects/{partition}/{hash}"
FAST_GAUGES = {  # refresh gauges often so the test waits on values, not on intervals
    "SHARDGATE_GATEWAY_METRICS_INTERVAL": "0.2",
    "SHARDGATE_NODE_METRICS_INTERVAL": "0.2",
    "SHARDGATE_NODE_INVENTORY_INTERVAL": "0.2",
}


class Scrape:
    """One /metrics answer, with lookups by name and exact labels."""

    def __init__(self, samples: list[Sample]) -> None:
        self.samples = samples

    def value(self, name: str, **labels: str) -> float:
        found = [s.value for s in self.samples if s.name == name and s.labels == labels]
        assert found, f"no {name}{labels} exposed"
        return float(found[0])

    def total(self, name: str, **labels: str) -> float:
        """Sum over the samples of `name` whose labels include `labels`."""
        return sum(
            s.value for s in self.samples if s.name == name and labels.items() <= s.labels.items()
        )


async def scrape(session: aiohttp.ClientSession, url: str) -> Scrape:
    return Scrape(await metric_samples(session, url))


@pytest.fixture
def observed(tmp_path: Path) -> Iterator[DevCluster]:
    """A cluster of its own, one upload at a time, logging in text mode to `services.log`."""
    env = {**FAST_GAUGES, "SHARDGATE_GATEWAY_UPLOAD_LIMIT": "1"}
    cluster = start_logged_cluster(tmp_path / "cluster", tmp_path / "services.log", env)
    yield cluster
    cluster.stop()


@pytest.fixture
async def api(observed: DevCluster, session: aiohttp.ClientSession) -> AsyncIterator[Api]:
    yield Api(session, observed.url, observed.api_key)


async def _hold_then_send(release: asyncio.Event) -> AsyncIterator[bytes]:
    yield SLOW[0]
    await release.wait()
    yield SLOW[1]


async def _admission_rejection(api: Api) -> int:
    """Hold the only upload slot with a paused body; a second upload is refused at once."""
    release = asyncio.Event()
    held = asyncio.create_task(api.put(BUCKET, f"{MARKER}/held.bin", _hold_then_send(release)))
    await wait_for_metric(api, "shardgate_gateway_uploads_in_progress", 1, timeout=30)
    status, _ = await api.put(BUCKET, f"{MARKER}/refused.bin", b"refused")
    release.set()
    held_status, _ = await held
    assert (status, held_status) == (503, 201)
    return sum(map(len, SLOW))


async def _wait_for(
    check: Callable[[], Awaitable[bool]], describe: str, timeout: float = 60.0
) -> None:
    """Poll an async predicate until it holds; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, f"timed out waiting for {describe}"
        await asyncio.sleep(0.1)


async def test_metrics_after_real_traffic(observed: DevCluster, api: Api, tmp_path: Path) -> None:
    session = api.session
    await api.create_bucket(BUCKET)
    bodies = [Body(size, seed=i).bytes() for i, size in enumerate(SIZES)]
    for i, body in enumerate(bodies):
        status, _ = await api.put(BUCKET, f"{MARKER}/obj-{i}.bin", body)
        assert status == 201
    received = sum(SIZES)
    sent = 0
    for i, body in enumerate(bodies):
        status, _, size = await api.get_sha256(BUCKET, f"{MARKER}/obj-{i}.bin")
        assert (status, size) == (200, len(body))
        sent += size
    status, _, _ = await api.get_sha256(BUCKET, f"{MARKER}/missing.bin")
    assert status == 404
    async with session.delete(api.object_url(BUCKET, f"{MARKER}/obj-0.bin"), headers=api.auth) as r:
        assert r.status == 204
    received += await _admission_rejection(api)
    puts = len(SIZES) + 1  # the held upload completed too
    traffic_done = time.time()
    live_bytes = sum(SIZES[1:]) + sum(map(len, SLOW))

    gw = await scrape(session, api.url)
    requests = "shardgate_http_requests_total"
    assert gw.value(requests, route=OBJECT_ROUTE, method="PUT", status="201") == puts
    assert gw.value(requests, route=OBJECT_ROUTE, method="PUT", status="503") == 1
    assert gw.value(requests, route=OBJECT_ROUTE, method="GET", status="404") == 1
    assert gw.value(requests, route=OBJECT_ROUTE, method="GET", status="200") == len(SIZES)
    assert gw.value(requests, route=OBJECT_ROUTE, method="DELETE", status="204") == 1
    _check_latency(gw, OBJECT_ROUTE, "PUT")
    _check_latency(gw, OBJECT_ROUTE, "GET")
    assert gw.value("shardgate_gateway_received_bytes_total") == received
    assert gw.value("shardgate_gateway_sent_bytes_total") == sent
    assert gw.value("shardgate_gateway_uploads_in_progress") == 0
    assert gw.value("shardgate_http_requests_in_flight", route=OBJECT_ROUTE) == 0
    rejections = "shardgate_gateway_admission_rejections_total"
    assert gw.value(rejections, kind="upload", code="ServiceUnavailable") == 1
    assert gw.value(rejections, kind="download", code="SlowDown") == 0
    assert gw.value("shardgate_gateway_quorum_failures_total", op="put") == 0
    assert gw.value("shardgate_gateway_quorum_failures_total", op="delete") == 0
    assert gw.value("shardgate_gateway_handoff_writes_total") == 0
    assert gw.value("shardgate_gateway_repair_queue_depth") == 0
    assert gw.value("shardgate_gateway_repairs_queued_total") == 0
    for node_id in observed.node_ids:
        assert gw.value("shardgate_gateway_replica_write_failures_total", node=node_id) == 0
        assert gw.value("shardgate_gateway_node_up", node=node_id) == 1

    node_sent = 0.0
    scrapes = {"gateway": gw}
    for node_id, service in observed.nodes.items():
        node = await _settled_node(session, service.url, after=traffic_done)
        scrapes[node_id] = node
        assert node.value(requests, route=NODE_OBJECT_ROUTE, method="PUT", status="201") == puts
        assert node.value(requests, route=NODE_OBJECT_ROUTE, method="DELETE", status="200") == 1
        _check_latency(node, NODE_OBJECT_ROUTE, "PUT")
        assert node.value("shardgate_node_received_bytes_total") == received
        node_sent += node.value("shardgate_node_sent_bytes_total")
        commits = "shardgate_node_commits_total"
        assert node.value(commits, kind="version", result="committed") == puts
        assert node.value(commits, kind="tombstone", result="committed") == 1
        assert node.value("shardgate_node_writes_in_progress") == 0
        free = node.value("shardgate_node_disk_free_bytes")
        assert 0 < free <= node.value("shardgate_node_disk_total_bytes")
        assert node.value("shardgate_node_objects") == puts - 1
        assert node.value("shardgate_node_object_bytes") == live_bytes
        assert node.value("shardgate_node_tombstones") == 1
        assert node.value("shardgate_node_inventory_timestamp_seconds") > 0
    assert node_sent == sent  # every GET was served whole by exactly one replica

    for process in scrapes.values():
        _check_process(process)
    _check_labels(scrapes)
    _check_text_access_log((tmp_path / "services.log").read_text())
    await _check_node_down(observed, api)


def _check_process(scrape: Scrape) -> None:
    """The process's own series, as every exporter has them: it started within the test, used
    CPU and memory, and may open as many files as the hard limit allows (raised at start)."""
    assert time.time() - 600 < scrape.value("process_start_time_seconds") < time.time()
    assert scrape.value("process_cpu_seconds_total") > 0
    assert scrape.value("process_resident_memory_bytes") > 10 * KiB * KiB
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard != resource.RLIM_INFINITY:
        assert scrape.value("process_max_fds") == hard
    assert 0 < scrape.value("process_open_fds") < scrape.value("process_max_fds")
    assert scrape.total("python_info") == 1
    assert scrape.total("python_gc_collections_total") > 0


def _check_latency(scrape: Scrape, route: str, method: str) -> None:
    """The histogram saw exactly the requests the counter did, and its buckets add up."""
    name = "shardgate_http_request_duration_seconds"
    count = scrape.value(f"{name}_count", route=route, method=method)
    assert count == scrape.total("shardgate_http_requests_total", route=route, method=method)
    assert scrape.value(f"{name}_bucket", route=route, method=method, le="+Inf") == count
    assert scrape.value(f"{name}_sum", route=route, method=method) > 0
    buckets = [
        s.value
        for s in scrape.samples
        if s.name == f"{name}_bucket"
        and s.labels["route"] == route
        and s.labels["method"] == method
    ]
    assert buckets == sorted(buckets)


async def _settled_node(session: aiohttp.ClientSession, url: str, after: float) -> Scrape:
    """The node's scrape once an inventory (every 0.2 s here) has run wholly after `after`: the
    first inventory to finish after it may have started before, the next one cannot have."""
    latest: list[Scrape] = []

    async def finished_after(moment: float) -> bool:
        latest[:] = [await scrape(session, url)]
        return latest[0].value("shardgate_node_inventory_timestamp_seconds") > moment

    await _wait_for(lambda: finished_after(after), f"{url} to take an inventory")
    first = latest[0].value("shardgate_node_inventory_timestamp_seconds")
    await _wait_for(lambda: finished_after(first), f"{url} to take another inventory")
    return latest[0]


def _check_labels(scrapes: dict[str, Scrape]) -> None:
    """Bounded labels: route templates and ids, never a key, a bucket or a raw path."""
    for service, scraped in scrapes.items():
        for sample in scraped.samples:
            for label, value in sample.labels.items():
                assert MARKER not in value and BUCKET not in value, (service, sample)
                if label == "route":
                    assert value == "unmatched" or value.startswith("/"), (service, sample)
                    assert ".bin" not in value, (service, sample)


def _check_text_access_log(stderr: str) -> None:
    """Text-mode access lines name method, route template, status, time, bytes and the id."""
    line = re.compile(
        r"gateway INFO shardgate\.access: PUT /v1/objects/\{bucket\}/\{key\} 201 "
        r"\d+\.\d{3}s in=(\d+) out=\d+ rid=[0-9a-f]{32}$",
        re.MULTILINE,
    )
    sizes = sorted(int(size) for size in line.findall(stderr))
    assert sizes == sorted([*SIZES, sum(map(len, SLOW))]), stderr[-3000:]
    node_line = re.compile(r"node/n1 INFO shardgate\.access: PUT /internal/v1/objects/")
    assert len(node_line.findall(stderr)) == len(SIZES) + 1
    access = [entry for entry in stderr.splitlines() if "shardgate.access" in entry]
    assert access and not any(MARKER in entry for entry in access)


async def _check_node_down(cluster: DevCluster, api: Api) -> None:
    """A write while a node is down queues a repair: the depth gauge (read from the catalog)
    and node_up, which the alerts watch, both show it."""
    cluster.kill_node("n3")
    status, _ = await api.put(BUCKET, f"{MARKER}/while-down.bin", b"written while n3 is down")
    assert status == 201

    async def shown() -> bool:
        gw = await scrape(api.session, api.url)
        return (
            gw.value("shardgate_gateway_repair_queue_depth") >= 1
            and gw.value("shardgate_gateway_node_up", node="n3") == 0
        )

    await _wait_for(shown, "the repair queue and node_up to show n3 down")
    gw = await scrape(api.session, api.url)
    assert gw.value("shardgate_gateway_repairs_queued_total") >= 1
    assert gw.value("shardgate_gateway_node_up", node="n1") == 1
