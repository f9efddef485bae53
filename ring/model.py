"""The ring's value types: `Node`, `RingSpec` and `RingError`.

Both types validate themselves on construction, so every `RingSpec` in the program
describes a ring that can be built; problems are reported as `RingError` naming the field.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from urllib.parse import urlsplit

DEFAULT_PARTITION_POWER = 12
DEFAULT_REPLICAS = 3
MAX_PARTITION_POWER = 20
STRATEGY_NAMES = ("ketama", "rendezvous")
# Weights are relative to a typical node (1.0). Ketama gives each unit of weight its own
# continuum points, so the bound keeps one heavy node's continuum buildable in about 1 s.
MAX_WEIGHT = 100.0


class RingError(Exception):
    """A ring file, ring spec or ring lookup is invalid."""


@dataclass(frozen=True)
class Node:
    id: str
    url: str
    weight: float = 1.0
    zone: str = ""

    def __post_init__(self) -> None:
        if not self.id or any(ch.isspace() for ch in self.id):
            raise RingError(f"node id must be a non-empty string without spaces, got {self.id!r}")
        where = f"node {self.id!r}"
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise RingError(f"{where}: url must be http(s)://host[:port], got {self.url!r}")
        if not (math.isfinite(self.weight) and 0 < self.weight <= MAX_WEIGHT):
            raise RingError(f"{where}: weight must be > 0 and <= {MAX_WEIGHT:g}, got {self.weight}")


@dataclass(frozen=True)
class RingSpec:
    epoch: int
    partition_power: int
    replicas: int
    nodes: tuple[Node, ...]
    strategy: str = "ketama"

    def __post_init__(self) -> None:
        if self.epoch < 0:
            raise RingError(f"epoch must be >= 0, got {self.epoch}")
        if not 1 <= self.partition_power <= MAX_PARTITION_POWER:
            raise RingError(
                f"partition_power must be between 1 and {MAX_PARTITION_POWER}, "
                f"got {self.partition_power}"
            )
        if self.replicas < 1:
            raise RingError(f"replicas must be >= 1, got {self.replicas}")
        if self.strategy not in STRATEGY_NAMES:
            raise RingError(f"strategy must be one of {STRATEGY_NAMES}, got {self.strategy!r}")
        if not self.nodes:
            raise RingError("nodes: a ring needs at least one node")
        seen: set[str] = set()
        for node in self.nodes:
            if node.id in seen:
                raise RingError(f"nodes: duplicate node id {node.id!r}")
            seen.add(node.id)

    def with_nodes(self, nodes: tuple[Node, ...]) -> RingSpec:
        """Return a copy with `nodes` and the next epoch."""
        return dataclasses.replace(self, nodes=nodes, epoch=self.epoch + 1)
