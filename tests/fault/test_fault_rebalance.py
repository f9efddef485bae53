"""Issue 9's must-show 3 against real processes: `shardgate ring add-node` under a running read
and write load moves partitions to the new node with no failed read of an existing object, and
afterwards every object sits on exactly its new replica set; `remove-node` the same way (the
removed node hands its data over before it holds nothing)."""

from __future__ import annotations

import asyncio
import hashlib
import shutil
import time
from collections.abc import Iterator

import aiohttp
import pytest
from clusterkit import Api, run_cli
from faultkit import FaultReport, held

from ring import Ring, load_ring_file
from shardgate.cli.dev import DevCluster

OBJECTS = 300
SETTLE_SECONDS = 90.0


@pytest.fixture
def moving_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevCluster]:
    data = tmp_path_factory.mktemp("rebalance")
    cluster = DevCluster(data, port=0, nodes=3, replicas=3)
    cluster.env.update(
        {"SHARDGATE_NODE_REPLICATE_INTERVAL": "1", "SHARDGATE_GATEWAY_REPAIR_INTERVAL": "1"}
    )
    cluster.start()
    yield cluster
    cluster.stop()
    shutil.rmtree(data, ignore_errors=True)


def body(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest() * 640  # 20 KiB, derived from the key


class Load:
    """Reads of existing objects and writes of new ones, round and round, until stopped."""

    def __init__(self, api: Api, existing: list[str]) -> None:
        self.api = api
        self.existing = existing
        self.written: list[str] = []
        self.reads = 0
        self.failed_reads: list[tuple[str, int]] = []
        self.failed_writes: list[tuple[str, int]] = []
        self._stop = asyncio.Event()

    async def _reader(self, offset: int) -> None:
        index = offset
        while not self._stop.is_set():
            key = self.existing[index % len(self.existing)]
            status, digest, _ = await self.api.get_sha256("move", key)
            if status != 200 or digest != hashlib.sha256(body(key)).hexdigest():
                self.failed_reads.append((key, status))
            self.reads += 1
            index += 7

    async def _writer(self) -> None:
        while not self._stop.is_set():
            key = f"during/{len(self.written)}"
            status, _ = await self.api.put("move", key, body(key))
            if status == 201:
                self.written.append(key)
            else:
                self.failed_writes.append((key, status))
            await asyncio.sleep(0.02)

    async def run_until(self, done: asyncio.Future[None]) -> None:
        tasks = [asyncio.create_task(self._reader(i)) for i in range(4)]
        tasks.append(asyncio.create_task(self._writer()))
        await done
        self._stop.set()
        await asyncio.gather(*tasks)


def misplaced(cluster: DevCluster, keys: list[str]) -> list[str]:
    ring = Ring(load_ring_file(cluster.ring_path))
    on_disk = held(cluster)
    wrong = []
    for key in keys:
        holders = set(on_disk.get(("move", key), {}))
        if holders != {n.id for n in ring.primaries(ring.partition("move", key))}:
            wrong.append(key)
    return wrong


async def settle(cluster: DevCluster, keys: list[str]) -> float:
    started = time.monotonic()
    while misplaced(cluster, keys) and time.monotonic() - started < SETTLE_SECONDS:
        await asyncio.sleep(0.5)
    return time.monotonic() - started


async def change_ring_under_load(
    cluster: DevCluster, api: Api, existing: list[str], *command: str
) -> Load:
    load = Load(api, existing)
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    running = asyncio.create_task(load.run_until(done))
    await asyncio.sleep(1.0)
    changed = await run_cli(cluster, "ring", *command)
    assert changed.returncode == 0, changed.stderr
    seconds = await settle(cluster, existing)
    await asyncio.sleep(1.0)
    done.set_result(None)
    await running
    print(f"\n{' '.join(command[:1])}: settled in {seconds:.1f} s, {load.reads} reads meanwhile")
    return load


@pytest.mark.slow
async def test_adding_then_removing_a_node_under_load_loses_no_read(
    moving_cluster: DevCluster, session: aiohttp.ClientSession, fault_report: FaultReport
) -> None:
    cluster = moving_cluster
    api = Api(session, cluster.url, cluster.api_key)
    await api.create_bucket("move")
    existing = [f"before/{i}" for i in range(OBJECTS)]
    for key in existing:
        assert (await api.put("move", key, body(key)))[0] == 201

    new_node = cluster.start_node("n4", port=0)
    cluster.node_ids.append("n4")
    ring_file = str(cluster.ring_path)
    fault_report.fault("ring add-node n4 under a read/write load")
    added = await change_ring_under_load(
        cluster, api, existing, "add-node", ring_file, "--node", f"id=n4,url={new_node.url}"
    )
    everything = existing + added.written
    await settle(cluster, everything)  # writes racing the switch of epochs move on the next pass
    assert added.failed_reads == [] and added.reads > 0
    assert added.failed_writes == []
    assert misplaced(cluster, everything) == []
    assert any("n4" in holders for holders in held(cluster).values() if holders)

    fault_report.fault("ring remove-node n1 under a read/write load")
    removed = await change_ring_under_load(cluster, api, everything, "remove-node", ring_file, "n1")
    everything += removed.written
    await settle(cluster, everything)
    assert removed.failed_reads == [] and removed.reads > 0
    assert removed.failed_writes == []
    assert misplaced(cluster, everything) == []
    assert not any("n1" in holders for holders in held(cluster).values())
    for key in everything[::10]:
        digest = hashlib.sha256(body(key)).hexdigest()
        assert await api.get_sha256("move", key) == (200, digest, len(body(key)))
    fault_report.objects(len(everything), len(misplaced(cluster, everything)))
