"""What one sweep reclaimed (or, in a dry run, would reclaim): files and bytes per kind.

Nodes build it, the gateway merges the reports of several nodes, the CLI prints it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# tmp: temp files and half-committed versions; pending: direct uploads never committed;
# parts: multipart parts nothing references; orphan: replicas the catalog no longer has;
# tombstone: deletes past their reclaim age.
KINDS = ("tmp", "pending", "parts", "orphan", "tombstone")
MAX_LISTED = 10_000  # paths named in one report; the counts stay exact beyond it


@dataclass
class SweepReport:
    dry_run: bool
    files: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    bytes: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    removed: list[str] = field(default_factory=list)
    errors: int = 0

    def add(self, kind: str, names: list[str], size: int) -> None:
        self.files[kind] += len(names)
        self.bytes[kind] += size
        room = MAX_LISTED - len(self.removed)
        self.removed.extend(names[: max(room, 0)])

    def merge(self, other: SweepReport) -> None:
        for kind in KINDS:
            self.files[kind] += other.files[kind]
            self.bytes[kind] += other.bytes[kind]
        self.removed.extend(other.removed[: max(MAX_LISTED - len(self.removed), 0)])
        self.errors += other.errors

    @property
    def total_files(self) -> int:
        return sum(self.files.values())

    @property
    def total_bytes(self) -> int:
        return sum(self.bytes.values())

    def to_json(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "kinds": {k: {"files": self.files[k], "bytes": self.bytes[k]} for k in KINDS},
            "files": self.total_files,
            "bytes": self.total_bytes,
            "removed": self.removed,
            "errors": self.errors,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SweepReport:
        kinds = data["kinds"]
        return cls(
            dry_run=bool(data["dry_run"]),
            files={k: int(kinds[k]["files"]) for k in KINDS},
            bytes={k: int(kinds[k]["bytes"]) for k in KINDS},
            removed=[str(name) for name in data["removed"]],
            errors=int(data["errors"]),
        )
