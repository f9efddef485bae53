"""Fixtures for functional tests: one storage node app (disk or memory store) behind aiohttp's
test client, and an in-process cluster of four node apps on their own test servers, a ring
file naming them, and the gateway app driven through aiohttp's test client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from func_cluster import API_KEY, CLUSTER_SECRET, NODE_COUNT, InProcCluster
from func_node_kit import SECRET as NODE_SECRET
from func_node_kit import Client

import gateway
import storage_node
from ring import Node, Ring, RingSpec, save_ring_file
from shardgate.config import GatewayConfig, NodeConfig, hash_api_key
from shardgate.versions import VersionClock


@pytest.fixture(params=["disk", "memory"])
def store_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def node_client(aiohttp_client: Any, tmp_path: Path, store_kind: str) -> Client:
    config = NodeConfig(node_id="node-a", data_dir=tmp_path, cluster_secret=NODE_SECRET)
    store = storage_node.MemoryStore() if store_kind == "memory" else None
    app = storage_node.create_app(config, store)
    return await aiohttp_client(app)  # type: ignore[no-any-return]


@pytest.fixture
def clock() -> VersionClock:
    return VersionClock()


@pytest.fixture
async def inproc_cluster(
    aiohttp_server: Any, aiohttp_client: Any, tmp_path: Path
) -> AsyncIterator[InProcCluster]:
    async def start_node(node_id: str, port: int | None = None) -> TestServer:
        """A node app on its own test server; its data survives a restart on the same port."""
        config = NodeConfig(
            node_id=node_id, data_dir=tmp_path / node_id, cluster_secret=CLUSTER_SECRET
        )
        return await aiohttp_server(storage_node.create_app(config), port=port)  # type: ignore[no-any-return]

    servers = {f"node-{n}": await start_node(f"node-{n}") for n in range(NODE_COUNT)}
    nodes = tuple(
        Node(id=node_id, url=str(server.make_url("")).rstrip("/"))
        for node_id, server in servers.items()
    )
    spec = RingSpec(epoch=1, partition_power=8, replicas=3, nodes=nodes)
    ring_file = tmp_path / "ring.json"
    save_ring_file(ring_file, spec)
    (tmp_path / "gateway").mkdir()
    config = GatewayConfig(
        data_dir=tmp_path / "gateway",
        ring_file=ring_file,
        cluster_secret=CLUSTER_SECRET,
        admin_key_sha256=hash_api_key(API_KEY),
        write_quorum=2,
        health_interval=0.2,
    )
    client = await aiohttp_client(gateway.create_app(config))
    async with aiohttp.ClientSession() as direct:
        yield InProcCluster(
            client=client,
            servers=servers,
            ring=Ring(spec),
            direct=direct,
            auth={"Authorization": f"Bearer {API_KEY}"},
            start_node=start_node,
        )
