"""The targets the load client drives: shardgate, SeaweedFS's filer, an in-memory ceiling, and
the direct paths of both (a presigned node URL; SeaweedFS's volume servers)."""

from bench.targets.base import Target
from bench.targets.direct import SeaweedFSVolumeTarget, ShardgateDirectTarget
from bench.targets.inmemory import InMemoryTarget
from bench.targets.seaweedfs import SeaweedFSTarget
from bench.targets.shardgate import ShardgateTarget

__all__ = [
    "InMemoryTarget",
    "SeaweedFSTarget",
    "SeaweedFSVolumeTarget",
    "ShardgateDirectTarget",
    "ShardgateTarget",
    "Target",
]
