"""The public gateway: API keys, buckets, objects streamed to replicated nodes, the catalog."""

from gateway.app import create_app
from gateway.catalog import BucketRecord, Catalog, ObjectRecord, Repair
from gateway.fanout import FanOutResult, fan_out
from gateway.sqlite_catalog import SqliteCatalog

__all__ = [
    "BucketRecord",
    "Catalog",
    "FanOutResult",
    "ObjectRecord",
    "Repair",
    "SqliteCatalog",
    "create_app",
    "fan_out",
]
