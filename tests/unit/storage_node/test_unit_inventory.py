"""The node's inventory: live objects, their bytes and tombstones, the same for both stores,
with damaged files (a .data without its trailer) not counted."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from shardgate.versions import format_version
from storage_node.disk import DiskStore
from storage_node.inventory import Inventory, take_inventory
from storage_node.memory import MemoryStore
from storage_node.records import NewVersion, ObjectMeta
from storage_node.store import Store

V1, V2 = format_version(1_000), format_version(2_000)


def _hash(key: str) -> str:
    return hashlib.md5(f"bkt/{key}".encode(), usedforsecurity=False).hexdigest()


async def _put(store: Store, partition: int, key: str, data: bytes, version: str) -> None:
    writer = await store.create_writer(partition, _hash(key))
    try:
        await writer.write(data)
        await writer.commit(NewVersion("bkt", key, version, "application/octet-stream", {}))
    finally:
        await writer.abort()


@pytest.fixture(params=["disk", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    return DiskStore(tmp_path / "node") if request.param == "disk" else MemoryStore()


async def test_counts_live_objects_bytes_and_tombstones(store: Store) -> None:
    assert await take_inventory(store) == Inventory(0, 0, 0)
    await _put(store, 1, "a", b"x" * 10, V1)
    await _put(store, 1, "a", b"y" * 7, V2)  # an overwrite: still one object, newest size
    await _put(store, 2, "b", b"z" * 100, V1)
    await _put(store, 3, "c", b"gone", V1)
    await store.write_tombstone(3, _hash("c"), ObjectMeta.tombstone_of("bkt", "c", V2))
    assert await take_inventory(store) == Inventory(objects=2, object_bytes=107, tombstones=1)


async def test_a_data_file_without_its_trailer_is_not_an_object(tmp_path: Path) -> None:
    store = DiskStore(tmp_path / "node")
    await _put(store, 4, "d", b"kept", V1)
    orphan = store.object_dir(5, _hash("e"))
    orphan.mkdir(parents=True)
    (orphan / f"{V1}.data").write_bytes(b"its end was lost")
    (store.objects / "6").mkdir()  # an empty partition directory
    assert await take_inventory(store) == Inventory(objects=1, object_bytes=4, tombstones=0)
