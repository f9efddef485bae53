"""The three targets the load client drives: shardgate, SeaweedFS's filer, an in-memory ceiling."""

from bench.targets.base import Target
from bench.targets.inmemory import InMemoryTarget
from bench.targets.seaweedfs import SeaweedFSTarget
from bench.targets.shardgate import ShardgateTarget

__all__ = ["InMemoryTarget", "SeaweedFSTarget", "ShardgateTarget", "Target"]
