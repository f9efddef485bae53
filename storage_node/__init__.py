"""The storage node: one aiohttp process per disk, storing versions atomically by key hash."""

from storage_node.app import create_app
from storage_node.disk import DiskStore
from storage_node.memory import MemoryStore
from storage_node.records import NewVersion, ObjectMeta
from storage_node.store import LocalFiles, ObjectWriter, Store, Usage

__all__ = [
    "DiskStore",
    "LocalFiles",
    "MemoryStore",
    "NewVersion",
    "ObjectMeta",
    "ObjectWriter",
    "Store",
    "Usage",
    "create_app",
]
