"""Helpers for functional tests on an in-process cluster: polling, and signed direct access
to each node behind the gateway."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp.test_utils import TestClient, TestServer
from multidict import CIMultiDict

from ring import Ring, object_hash, partition_of
from shardgate.internal_api import object_path
from shardgate.signing import sign_request

CLUSTER_SECRET = b"functional-cluster-secret"
API_KEY = "k"
NODE_COUNT = 4


async def wait_until(check: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> None:
    """Poll `check` until it holds; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(0.05)


@dataclass
class NodeAnswer:
    status: int
    headers: CIMultiDict[str]
    body: bytes


@dataclass
class InProcCluster:
    """The gateway client plus direct, signed access to every node behind it."""

    client: TestClient[Any, Any]
    servers: dict[str, TestServer]
    ring: Ring
    direct: aiohttp.ClientSession
    auth: dict[str, str]
    start_node: Callable[[str, int | None], Awaitable[TestServer]]

    @property
    def node_ids(self) -> list[str]:
        return list(self.servers)

    def primaries(self, bucket: str, key: str) -> list[str]:
        partition = partition_of(object_hash(bucket, key), self.ring.partition_power)
        return [node.id for node in self.ring.primaries(partition)]

    def handoffs(self, bucket: str, key: str) -> list[str]:
        partition = partition_of(object_hash(bucket, key), self.ring.partition_power)
        return [node.id for node in self.ring.handoffs(partition)]

    def key_placed_on(self, bucket: str, wanted: set[str], prefix: str = "obj") -> str:
        """A key whose primaries include every node in `wanted`."""
        for n in range(10_000):
            key = f"{prefix}-{n}"
            if wanted <= set(self.primaries(bucket, key)):
                return key
        raise AssertionError(f"no key places {wanted} among its primaries")

    async def on_node(
        self, node_id: str, bucket: str, key: str, method: str = "HEAD"
    ) -> NodeAnswer:
        """Ask one node directly (signed, internal API) about bucket/key."""
        obj_hash = object_hash(bucket, key)
        path = object_path(partition_of(obj_hash, self.ring.partition_power), obj_hash)
        url = str(self.servers[node_id].make_url(path))
        headers = sign_request(CLUSTER_SECRET, method, path)
        async with self.direct.request(method, url, headers=headers) as resp:
            return NodeAnswer(resp.status, CIMultiDict(resp.headers), await resp.read())

    async def settled(self) -> None:
        """Wait until no replica write runs on after its upload was answered (at W of N)."""

        async def none_late() -> bool:
            resp = await self.client.get("/metrics")
            return "\nshardgate_gateway_late_replica_writes 0.0\n" in await resp.text()

        await wait_until(none_late)

    async def holders(self, bucket: str, key: str) -> set[str]:
        """Running nodes that serve a live copy of bucket/key, once late replica writes are
        done."""
        await self.settled()
        running = [n for n, server in self.servers.items() if not server.closed]
        answers = await asyncio.gather(*(self.on_node(n, bucket, key) for n in running))
        return {n for n, answer in zip(running, answers, strict=True) if answer.status == 200}

    async def stop(self, *node_ids: str) -> None:
        for node_id in node_ids:
            await self.servers[node_id].close()

    async def restart(self, node_id: str) -> None:
        """Start a stopped node again on its old port (the ring names it by URL)."""
        self.servers[node_id] = await self.start_node(node_id, self.servers[node_id].port)

    async def node_metric(self, node_id: str, name: str, *labels: str) -> float:
        """Sum of one Prometheus series on a node, over the samples carrying every label."""
        async with self.direct.get(str(self.servers[node_id].make_url("/metrics"))) as resp:
            text = await resp.text()
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith((f"{name} ", f"{name}{{")) and all(lab in line for lab in labels)
        )

    async def running_nodes_idle(self) -> bool:
        """True when no running node has a write streaming into its tmp/."""
        running = [n for n, server in self.servers.items() if not server.closed]
        for node_id in running:
            if await self.node_metric(node_id, "shardgate_node_writes_in_progress") != 0:
                return False
        return True

    async def wait_seen_down(self, *node_ids: str) -> None:
        """Wait until the gateway's health probe reports every one of node_ids down."""

        async def all_down() -> bool:
            resp = await self.client.get("/v1/cluster", headers=self.auth)
            nodes = {node["id"]: node for node in (await resp.json())["nodes"]}
            return all(nodes[node_id]["up"] is False for node_id in node_ids)

        await wait_until(all_down)

    async def create_bucket(self, name: str) -> None:
        resp = await self.client.put(f"/v1/buckets/{name}", headers=self.auth)
        assert resp.status in (200, 201), await resp.text()
