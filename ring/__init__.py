"""Placement: `bucket/key` -> partition -> ordered replica nodes, built from a ring file.

Every process that loads the same ring file places every object on the same nodes.
"""

from ring.hashing import object_hash, partition_of
from ring.model import (
    DEFAULT_PARTITION_POWER,
    DEFAULT_REPLICAS,
    STRATEGY_NAMES,
    Node,
    RingError,
    RingSpec,
)
from ring.placement import Ring
from ring.ringfile import load_ring_file, save_ring_file
from ring.strategies import KetamaStrategy, PlacementStrategy, RendezvousStrategy
from ring.watch import RingWatch

__all__ = [
    "DEFAULT_PARTITION_POWER",
    "DEFAULT_REPLICAS",
    "STRATEGY_NAMES",
    "KetamaStrategy",
    "Node",
    "PlacementStrategy",
    "RendezvousStrategy",
    "Ring",
    "RingError",
    "RingSpec",
    "RingWatch",
    "load_ring_file",
    "object_hash",
    "partition_of",
    "save_ring_file",
]
