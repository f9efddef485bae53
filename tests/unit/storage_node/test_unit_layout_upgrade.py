"""A data directory of the first layout (a .meta beside each .data) is converted when a node
opens it: every committed version stays readable with the same bytes, nothing uncommitted
comes to light, and a crash part-way is finished by the next start."""

from __future__ import annotations

from pathlib import Path

import pytest

from shardgate.versions import format_version
from storage_node.disk import DiskStore
from storage_node.layout_upgrade import FORMAT_FILE, LAYOUT, upgrade_layout
from storage_node.records import ObjectMeta
from storage_node.version_file import trailer

V1, V2 = format_version(1_000), format_version(2_000)
PART, HASH, OTHER = 7, "a" * 32, "b" * 32


def old_layout(root: Path) -> dict[str, ObjectMeta]:
    """A node's directory as the first layout left it: a committed version, a tombstone, and
    a .data whose .meta never landed (a crash between the two renames)."""
    kept = ObjectMeta("bkt", "kept", V1, 5, "e" * 32)
    gone = ObjectMeta.tombstone_of("bkt", "gone", V2)
    target, other = root / "objects" / str(PART) / HASH, root / "objects" / str(PART) / OTHER
    target.mkdir(parents=True)
    other.mkdir(parents=True)
    (target / f"{V1}.data").write_bytes(b"hello")
    (target / f"{V1}.meta").write_bytes(kept.to_json())
    (target / f"{V2}.data").write_bytes(b"never committed")
    (other / f"{V2}.ts").write_bytes(gone.to_json())
    return {HASH: kept, OTHER: gone}


async def test_a_node_opening_the_old_layout_converts_it(tmp_path: Path) -> None:
    root = tmp_path / "node"
    expected = old_layout(root)
    store = DiskStore(root)
    assert (root / FORMAT_FILE).read_text().strip() == LAYOUT
    assert sorted(p.name for p in store.object_dir(PART, HASH).iterdir()) == [f"{V1}.data"]
    kept = expected[HASH]
    assert await store.newest(PART, HASH) == kept
    assert b"".join([c async for c in store.read(PART, HASH, kept, 0, kept.size)]) == b"hello"
    assert await store.newest(PART, OTHER) == expected[OTHER]
    assert upgrade_layout(store) == 0  # done once; the marker says so


async def test_a_crash_part_way_is_finished_by_the_next_start(tmp_path: Path) -> None:
    root = tmp_path / "node"
    kept = old_layout(root)[HASH]
    target = root / "objects" / str(PART) / HASH
    # The first run appended part of the trailer, then died before removing the .meta.
    (target / f"{V1}.data").write_bytes(b"hello" + trailer(kept)[:10])
    DiskStore(root)
    assert (target / f"{V1}.data").read_bytes() == b"hello" + trailer(kept)


def test_a_directory_of_a_newer_layout_is_refused(tmp_path: Path) -> None:
    tmp_path.joinpath(FORMAT_FILE).write_text("3\n")
    with pytest.raises(RuntimeError, match="layout '3'"):
        DiskStore(tmp_path)


async def test_a_pair_that_cannot_be_upgraded_is_set_aside_and_the_rest_goes_on(
    tmp_path: Path,
) -> None:
    root = tmp_path / "node"
    old_layout(root)
    broken, short = root / "objects" / "8" / ("c" * 32), root / "objects" / "9" / ("d" * 32)
    for target in (broken, short):
        target.mkdir(parents=True)
    (broken / f"{V1}.data").write_bytes(b"x")
    (broken / f"{V1}.meta").write_bytes(b"{not json")
    (short / f"{V1}.data").write_bytes(b"abc")
    (short / f"{V1}.meta").write_bytes(ObjectMeta("bkt", "s", V1, 10, "e" * 32).to_json())
    (root / "objects" / "8" / "stray.txt").write_text("not an object directory")
    store = DiskStore(root)
    for target in (broken, short):
        aside = root / "quarantine" / target.relative_to(root / "objects")
        assert sorted(p.name for p in aside.iterdir()) == [f"{V1}.data", f"{V1}.meta"]
        assert not any(target.iterdir())
    assert await store.newest(PART, HASH) is not None
