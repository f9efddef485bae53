"""Read and write ring files.

A ring file is JSON (`.json`) or TOML (`.toml`) with keys epoch, partition_power, replicas,
nodes (each id, url, optional weight and zone) and optional strategy. Loading rejects any
malformed file with a `RingError` naming the file and field; saving writes JSON atomically.
"""

import json
import os
import tempfile
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ring.model import Node, RingError, RingSpec

_REQUIRED = ("epoch", "partition_power", "replicas", "nodes")
_OPTIONAL = ("strategy",)
_NODE_REQUIRED = ("id", "url")
_NODE_OPTIONAL = ("weight", "zone")


def load_ring_file(path: str | Path) -> RingSpec:
    """Read and validate the ring file at `path`."""
    path = Path(path)
    try:
        if path.suffix == ".json":
            data = json.loads(path.read_bytes())
        elif path.suffix == ".toml":
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        else:
            raise RingError("ring file name must end in .json or .toml")
        return _spec_from_dict(data)
    except OSError as exc:
        raise RingError(f"ring file {path}: cannot read: {exc.strerror}") from exc
    except (ValueError, RingError) as exc:
        # ValueError covers JSONDecodeError, TOMLDecodeError and bad UTF-8.
        raise RingError(f"ring file {path}: {exc}") from exc


def save_ring_file(path: str | Path, spec: RingSpec) -> None:
    """Write `spec` as JSON to `path` so that readers see the old file or the new, never part."""
    path = Path(path)
    if path.suffix != ".json":
        raise RingError(f"ring file {path}: rings are saved as JSON; use a .json name")
    body = json.dumps(_spec_to_dict(spec), indent=2).encode() + b"\n"
    try:
        _write_atomically(path, body)
    except OSError as exc:
        raise RingError(f"ring file {path}: cannot write: {exc.strerror or exc}") from exc


def _write_atomically(path: Path, body: bytes) -> None:
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as tmp:
            tmp.write(body)
            tmp.flush()
            # Data must be on disk before the rename makes it visible, or a crash could
            # leave a complete-looking name over an empty file.
            os.fsync(tmp.fileno())
        os.replace(tmp_name, path)
        # The rename itself lives in the directory; fsync it so the new file survives a crash.
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    finally:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)


def _spec_to_dict(spec: RingSpec) -> dict[str, Any]:
    return {
        "epoch": spec.epoch,
        "partition_power": spec.partition_power,
        "replicas": spec.replicas,
        "strategy": spec.strategy,
        "nodes": [
            {"id": node.id, "url": node.url, "weight": node.weight, "zone": node.zone}
            for node in spec.nodes
        ],
    }


def _spec_from_dict(data: object) -> RingSpec:
    top = _mapping(data, "top level", _REQUIRED, _OPTIONAL)
    raw_nodes = top["nodes"]
    if not isinstance(raw_nodes, list):
        raise RingError("nodes must be a list")
    nodes = tuple(_node_from_dict(raw, index) for index, raw in enumerate(raw_nodes))
    return RingSpec(
        epoch=_integer(top["epoch"], "epoch"),
        partition_power=_integer(top["partition_power"], "partition_power"),
        replicas=_integer(top["replicas"], "replicas"),
        nodes=nodes,
        strategy=_string(top.get("strategy", "ketama"), "strategy"),
    )


def _node_from_dict(raw: object, index: int) -> Node:
    where = f"nodes[{index}]"
    fields = _mapping(raw, where, _NODE_REQUIRED, _NODE_OPTIONAL)
    weight = fields.get("weight", 1.0)
    if isinstance(weight, bool) or not isinstance(weight, int | float):
        raise RingError(f"{where}: weight must be a number, got {weight!r}")
    try:
        return Node(
            id=_string(fields["id"], f"{where}.id"),
            url=_string(fields["url"], f"{where}.url"),
            weight=float(weight),
            zone=_string(fields.get("zone", ""), f"{where}.zone"),
        )
    except RingError as exc:
        raise RingError(f"{where}: {exc}") from exc


def _mapping(
    data: object, where: str, required: tuple[str, ...], optional: tuple[str, ...]
) -> Mapping[str, object]:
    if not isinstance(data, dict):
        raise RingError(f"{where} must be a table/object, got {type(data).__name__}")
    missing = [key for key in required if key not in data]
    if missing:
        raise RingError(f"{where}: missing {', '.join(missing)}")
    # Unknown keys are refused: a misspelt "weigth" silently ignored would place data
    # differently from what the operator meant.
    unknown = sorted(set(data) - set(required) - set(optional))
    if unknown:
        raise RingError(f"{where}: unknown key(s) {', '.join(unknown)}")
    return data


def _integer(value: object, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise RingError(f"{field} must be an integer, got {value!r}")
    return value


def _string(value: object, field: str) -> str:
    if not isinstance(value, str):
        raise RingError(f"{field} must be a string, got {value!r}")
    return value
