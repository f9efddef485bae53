"""What the fault suite reports (faults injected, objects checked, objects lost), and what its
tests read off the nodes' disks."""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from shardgate.cli.dev import DevCluster
from storage_node.version_file import read_meta_at


@dataclass
class FaultReport:
    faults: list[str] = field(default_factory=list)
    checked: int = 0
    lost: int = 0

    def fault(self, what: str) -> None:
        self.faults.append(what)

    def objects(self, checked: int, lost: int) -> None:
        self.checked += checked
        self.lost += lost


REPORT = FaultReport()


def held(cluster: DevCluster) -> dict[tuple[str, str], dict[str, tuple[str, bool]]]:
    """(bucket, key) -> {node id: (newest version, tombstone)}, read from every node's disk.
    A directory that changes while it is read (a commit, a hand-over) is left out this time:
    callers poll, and an object left out counts as misplaced, never as in place."""
    found: dict[tuple[str, str], dict[str, tuple[str, bool]]] = {}
    for node_id in cluster.node_ids:
        for directory in (cluster.data / node_id / "objects").glob("*/*"):
            try:
                names = {p.name for p in directory.iterdir()}
                stems = {n.split(".")[0] for n in names if n.endswith((".data", ".ts"))}
                if not stems:
                    continue
                newest = max(stems)
                tombstone = f"{newest}.ts" in names
                if tombstone:
                    meta = json.loads((directory / f"{newest}.ts").read_text())
                else:
                    meta = vars(read_meta_at(directory / f"{newest}.data"))
            except (FileNotFoundError, ValueError):
                continue
            found.setdefault((meta["bucket"], meta["key"]), {})[node_id] = (newest, tombstone)
    return found


async def wait_for_tmp_bytes(tmp: Path, at_least: int) -> None:
    """Wait until a write in progress in a node's tmp directory holds `at_least` bytes."""
    for _ in range(600):
        for path in tmp.glob("*.tmp"):
            with contextlib.suppress(FileNotFoundError):
                if path.stat().st_size >= at_least:
                    return
        await asyncio.sleep(0.05)
    raise AssertionError(f"no write in progress reached {at_least} bytes in {tmp}")
