"""Placing a committed direct upload: a version the peers took is withdrawn when the node the
client uploaded to cannot publish it, so nothing the catalog never recorded outranks it."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from gateway.catalog import PendingRecord
from gateway.nodes import NodeFailed, ObjectAddress, PutAck
from gateway.pending_placement import PendingPlacement
from ring import Node, Ring, RingSpec
from shardgate.config import GatewayConfig

VERSION = "0" * 19 + "7"


class _Nodes:
    """Early copies on both peers publish; the source's own publish fails."""

    def __init__(self, source: Node) -> None:
        self.source = source
        self.published: list[str] = []

    async def publish_pending(
        self, node: Node, upload_id: str, version: str, source: Any = None
    ) -> PutAck:
        if node == self.source:
            raise NodeFailed(node, "publish answered 404: the bytes are gone", 404)
        self.published.append(node.id)
        return PutAck(node.id, etag="e", size=1)


class _Writer:
    def __init__(self) -> None:
        self.withdrawn: list[tuple[str, list[str]]] = []

    async def withdraw(self, addr: ObjectAddress, version: str, nodes: list[Node]) -> None:
        self.withdrawn.append((version, sorted(node.id for node in nodes)))


async def test_peers_copies_are_withdrawn_when_the_source_cannot_publish(tmp_path: Path) -> None:
    nodes = tuple(Node(id=f"n{i}", url=f"http://127.0.0.1:{9000 + i}") for i in range(3))
    ring = Ring(RingSpec(epoch=1, partition_power=4, replicas=3, nodes=nodes))
    source = ring.primaries(5)[0]
    addr = ObjectAddress(5, "a" * 32, "b", "k")
    objects = SimpleNamespace(ring=ring, address=lambda b, k: addr, new_version=lambda: VERSION)
    health = SimpleNamespace(is_up=lambda node_id: True)
    client, writer = _Nodes(source), _Writer()
    config = GatewayConfig(
        data_dir=tmp_path, ring_file=tmp_path / "r", cluster_secret=b"s", admin_key_sha256=""
    )
    placement = PendingPlacement(
        config, cast(Any, objects), cast(Any, client), cast(Any, health), cast(Any, writer)
    )
    peers = sorted(node.id for node in ring.primaries(5) if node != source)
    pending = PendingRecord("u1", "b", "k", source.id, created=0.0, expires=1e12)

    with pytest.raises(NodeFailed):
        await placement.place(pending, source, {"copies": peers})
    assert sorted(client.published) == peers
    assert writer.withdrawn == [(VERSION, peers)]
