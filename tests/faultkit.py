"""What the fault suite reports: faults injected, objects checked, objects lost."""

from __future__ import annotations

from dataclasses import dataclass, field


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
