"""What the gateway's unit tests share: a ring of five nodes with three replicas, and node
health they set by hand."""

from __future__ import annotations

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
PRIMARIES = [n.id for n in RING.primaries(PART)]
HANDOFFS = [n.id for n in RING.handoffs(PART)]


class FakeHealth:
    def __init__(self, down: set[str] | None = None) -> None:
        self.down = set(down or ())
        self.marked: list[str] = []

    def is_up(self, node_id: str) -> bool:
        return node_id not in self.down

    def mark_down(self, node_id: str, reason: str) -> None:
        self.down.add(node_id)
        self.marked.append(node_id)
