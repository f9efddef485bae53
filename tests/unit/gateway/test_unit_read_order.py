"""ReplicatedReader.candidates: the order in which reads (and presigned GETs) try the nodes."""

from __future__ import annotations

from typing import cast

from prometheus_client import CollectorRegistry

from gateway.catalog import ObjectRecord
from gateway.metrics import GatewayMetrics
from gateway.node_health import NodeHealth
from gateway.nodes import NodeClient
from gateway.replicated_read import ReplicatedReader
from ring import Node, Ring, RingSpec

RING = Ring(
    RingSpec(
        epoch=1,
        partition_power=4,
        replicas=3,
        nodes=tuple(Node(f"n{i}", f"http://127.0.0.1:{9000 + i}") for i in range(1, 6)),
    )
)
PART = 0
P = [n.id for n in RING.primaries(PART)]
H = [n.id for n in RING.handoffs(PART)]


class Health:
    def __init__(self, down: set[str] | None = None) -> None:
        self.down = down or set()

    def is_up(self, node_id: str) -> bool:
        return node_id not in self.down


def order(replicas: tuple[str, ...], down: set[str] | None = None) -> list[str]:
    reader = ReplicatedReader(
        cast(NodeClient, None),
        cast(NodeHealth, Health(down)),
        GatewayMetrics.create(CollectorRegistry()),
    )
    record = ObjectRecord("b", "k", "0" * 20, 1, "e" * 32, "text/plain", replicas)
    return [node.id for node in reader.candidates(RING, PART, record)]


def test_recorded_primaries_come_in_the_partitions_order() -> None:
    assert order((P[2], P[0], P[1])) == P


def test_a_recorded_handoff_comes_after_the_recorded_primaries() -> None:
    """The handoff stood in for P[0] at the write and may have handed its copy back since; the
    primaries that took the write hold it for sure, and P[0] may not have been repaired yet."""
    assert order((H[0], P[1], P[2])) == [P[1], P[2], H[0], P[0]]


def test_nodes_believed_down_go_last() -> None:
    assert order((P[0], P[1], P[2]), down={P[0]}) == [P[1], P[2], P[0]]
