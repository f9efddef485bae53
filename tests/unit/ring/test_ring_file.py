"""Ring files: JSON and TOML round trips, atomic saves, and clear errors for bad files."""

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from ring import Node, RingError, RingSpec, load_ring_file, save_ring_file

SPEC = RingSpec(
    epoch=4,
    partition_power=10,
    replicas=2,
    nodes=(
        Node("n1", "http://127.0.0.1:9001", weight=1.0, zone="a"),
        Node("n2", "https://store-2.internal:9443", weight=2.5, zone="b"),
        Node("n3", "http://[::1]:9003"),
    ),
    strategy="rendezvous",
)

TOML = """\
epoch = 4
partition_power = 10
replicas = 2
strategy = "rendezvous"

[[nodes]]
id = "n1"
url = "http://127.0.0.1:9001"
weight = 1
zone = "a"

[[nodes]]
id = "n2"
url = "https://store-2.internal:9443"
weight = 2.5
zone = "b"

[[nodes]]
id = "n3"
url = "http://[::1]:9003"
"""


def _valid() -> dict[str, Any]:
    return {
        "epoch": 1,
        "partition_power": 12,
        "replicas": 3,
        "strategy": "ketama",
        "nodes": [
            {"id": "n1", "url": "http://127.0.0.1:9001", "weight": 1, "zone": "a"},
            {"id": "n2", "url": "http://127.0.0.1:9002"},
        ],
    }


def test_json_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "ring.json"
    save_ring_file(path, SPEC)
    assert load_ring_file(path) == SPEC
    assert json.loads(path.read_text())["nodes"][1]["weight"] == 2.5


def test_toml_loads_the_same_spec(tmp_path: Path) -> None:
    path = tmp_path / "ring.toml"
    path.write_text(TOML)
    assert load_ring_file(str(path)) == SPEC


def test_defaults_for_optional_fields(tmp_path: Path) -> None:
    data = _valid()
    del data["strategy"]
    path = tmp_path / "ring.json"
    path.write_text(json.dumps(data))
    spec = load_ring_file(path)
    assert spec.strategy == "ketama"
    assert spec.nodes[1] == Node("n2", "http://127.0.0.1:9002", weight=1.0, zone="")


def test_save_replaces_atomically_and_leaves_no_temp_files(tmp_path: Path) -> None:
    path = tmp_path / "ring.json"
    save_ring_file(path, SPEC)
    newer = SPEC.with_nodes(SPEC.nodes[:2])
    save_ring_file(path, newer)
    assert load_ring_file(path) == newer
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ring.json"]


def test_failed_save_keeps_the_old_file_and_removes_the_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "ring.json"
    save_ring_file(path, SPEC)

    def broken_fsync(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(RingError, match="cannot write: Input/output error"):
        save_ring_file(path, SPEC.with_nodes(SPEC.nodes[:1]))
    assert load_ring_file(path) == SPEC
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ring.json"]


def test_save_refuses_a_non_json_name(tmp_path: Path) -> None:
    with pytest.raises(RingError, match=r"\.json"):
        save_ring_file(tmp_path / "ring.toml", SPEC)


def test_with_nodes_bumps_the_epoch() -> None:
    newer = SPEC.with_nodes(SPEC.nodes[:1])
    assert (newer.epoch, newer.nodes, newer.replicas) == (5, SPEC.nodes[:1], SPEC.replicas)
    assert SPEC.epoch == 4


def _set(path: str, value: object) -> dict[str, Any]:
    """A valid ring file with dotted `path` ("nodes.1.url") set to `value`; `...` removes it."""
    data = _valid()
    *parents, last = path.split(".")
    target: Any = data
    for part in parents:
        target = target[int(part)] if part.isdigit() else target[part]
    key: Any = int(last) if last.isdigit() else last
    if value is ...:
        del target[key]
    else:
        target[key] = value
    return data


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (_set("nodes.1.id", "n1"), r"duplicate node id 'n1'"),
        (_set("nodes.1.weight", 0), r"nodes\[1\].*weight must be > 0"),
        (_set("nodes.1.weight", -1.5), r"nodes\[1\].*weight must be > 0"),
        (_set("nodes.1.weight", "2"), r"nodes\[1\]: weight must be a number"),
        (_set("nodes.1.weight", True), r"nodes\[1\]: weight must be a number"),
        (_set("nodes.1.url", ...), r"nodes\[1\]: missing url"),
        (_set("nodes.1.url", "ftp://x:1"), r"nodes\[1\].*url must be http\(s\)"),
        (_set("nodes.0.id", ""), r"nodes\[0\].*node id"),
        (_set("nodes.0.weigth", 2), r"nodes\[0\]: unknown key\(s\) weigth"),
        (_set("partition_power", 0), r"partition_power must be between 1 and 20, got 0"),
        (_set("partition_power", 21), r"partition_power must be between 1 and 20, got 21"),
        (_set("partition_power", 12.0), r"partition_power must be an integer"),
        (_set("replicas", 0), r"replicas must be >= 1"),
        (_set("epoch", ...), r"missing epoch"),
        (_set("strategy", "maglev"), r"strategy must be one of"),
        (_set("nodes", []), r"nodes: a ring needs at least one node"),
        (_set("nodes", {"n1": {}}), r"nodes must be a list"),
        ([], r"top level must be a table/object"),
    ],
)
def test_bad_ring_files_name_the_problem(tmp_path: Path, data: object, message: str) -> None:
    path = tmp_path / "ring.json"
    path.write_text(json.dumps(data))
    with pytest.raises(RingError, match=f"ring file {re.escape(str(path))}: .*{message}"):
        load_ring_file(path)


@pytest.mark.parametrize(
    ("name", "body", "message"),
    [
        ("ring.json", "{not json", r"Expecting property name"),
        ("ring.toml", "epoch = ", r"Invalid value"),
        ("ring.yaml", "epoch: 1", r"must end in \.json or \.toml"),
    ],
)
def test_unreadable_ring_files_raise_ring_error(
    tmp_path: Path, name: str, body: str, message: str
) -> None:
    path = tmp_path / name
    path.write_text(body)
    with pytest.raises(RingError, match=message):
        load_ring_file(path)


def test_missing_ring_file_raises_ring_error(tmp_path: Path) -> None:
    with pytest.raises(RingError, match="cannot read: No such file"):
        load_ring_file(tmp_path / "absent.json")
