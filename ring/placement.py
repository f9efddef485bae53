"""`Ring`: a built `RingSpec` answering which nodes hold a partition.

Each partition's replica set (primaries) is the first N nodes of its strategy order,
preferring distinct zones; the remaining nodes, in order, are its handoffs.
"""

from collections.abc import Sequence
from dataclasses import dataclass

from ring.hashing import object_hash, partition_of
from ring.model import Node, RingError, RingSpec
from ring.strategies import make_strategy


@dataclass(frozen=True)
class _Placement:
    primaries: tuple[Node, ...]
    handoffs: tuple[Node, ...]
    preference: tuple[Node, ...]


class Ring:
    """Placement for every partition of `spec`, computed once at construction."""

    def __init__(self, spec: RingSpec) -> None:
        self.spec = spec
        self.epoch = spec.epoch
        self.partition_power = spec.partition_power
        self.replicas = spec.replicas
        self.nodes = spec.nodes
        self._by_id = {node.id: node for node in spec.nodes}
        strategy = make_strategy(spec.strategy, spec.nodes)
        count = min(spec.replicas, len(spec.nodes))
        # Partitions share orders (ketama: at most one per continuum arc), so placements are
        # interned: a 2**20-partition ring then costs one reference per partition.
        interned: dict[tuple[str, ...], _Placement] = {}
        placements: list[_Placement] = []
        for partition in range(1 << spec.partition_power):
            order = tuple(strategy.order(partition))
            placement = interned.get(order)
            if placement is None:
                placement = _place([self._by_id[node_id] for node_id in order], count)
                interned[order] = placement
            placements.append(placement)
        self._placements = tuple(placements)

    def node(self, node_id: str) -> Node:
        try:
            return self._by_id[node_id]
        except KeyError:
            raise RingError(f"unknown node id {node_id!r} in ring epoch {self.epoch}") from None

    def partition(self, bucket: str, key: str) -> int:
        return partition_of(object_hash(bucket, key), self.partition_power)

    def primaries(self, partition: int) -> tuple[Node, ...]:
        """The replica set: min(replicas, len(nodes)) distinct nodes, most preferred first."""
        return self._placement(partition).primaries

    def handoffs(self, partition: int) -> tuple[Node, ...]:
        """Every node that is not a primary, most preferred first."""
        return self._placement(partition).handoffs

    def preference(self, partition: int) -> tuple[Node, ...]:
        return self._placement(partition).preference

    def partitions_of(self, node_id: str) -> list[int]:
        """Partitions for which `node_id` is a primary, ascending."""
        node = self.node(node_id)
        return [
            partition
            for partition, placement in enumerate(self._placements)
            if node in placement.primaries
        ]

    def _placement(self, partition: int) -> _Placement:
        # Checked explicitly because a negative index would silently wrap around.
        if not 0 <= partition < len(self._placements):
            raise RingError(
                f"partition {partition} out of range 0..{len(self._placements) - 1} "
                f"(partition_power {self.partition_power})"
            )
        return self._placements[partition]


def _place(order: Sequence[Node], count: int) -> _Placement:
    """Choose `count` primaries from `order`, one per zone while unused zones remain."""
    zones_left = {node.zone for node in order}
    chosen: set[str] = set()
    for node in order:
        if len(chosen) == count or not zones_left:
            break
        if node.zone in zones_left:
            chosen.add(node.id)
            zones_left.discard(node.zone)
    for node in order:
        if len(chosen) == count:
            break
        chosen.add(node.id)
    primaries = tuple(node for node in order if node.id in chosen)
    handoffs = tuple(node for node in order if node.id not in chosen)
    return _Placement(primaries, handoffs, primaries + handoffs)
