"""What one benchmark run measured, as plain records that round-trip through JSON, so the
report can be rendered again (or compared) without re-running anything."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bench.stats import PhaseResult
from bench.workloads import Workload


@dataclass(frozen=True)
class RunRecord:
    """One target running one workload once: its phases and its processes' peak RSS."""

    target: str
    workload: str
    round: int
    load1: float  # 1-minute load average when it started
    phases: dict[str, PhaseResult]
    peaks_mib: dict[str, float]
    cpu_s: dict[str, dict[str, float]] = field(default_factory=dict)  # phase -> process -> s

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "workload": self.workload,
            "round": self.round,
            "load1": self.load1,
            "phases": {name: phase.to_json() for name, phase in self.phases.items()},
            "peaks_mib": self.peaks_mib,
            "cpu_s": self.cpu_s,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunRecord:
        return cls(
            target=data["target"],
            workload=data["workload"],
            round=data["round"],
            load1=data["load1"],
            phases={k: PhaseResult.from_json(v) for k, v in data["phases"].items()},
            peaks_mib=data["peaks_mib"],
            cpu_s=data.get("cpu_s", {}),
        )


@dataclass
class BenchResults:
    started: str
    command: str
    quick: bool
    rounds: int
    machine: dict[str, str]
    targets: dict[str, str]  # name -> description
    workloads: list[Workload]
    finished: str = ""
    load_samples: list[float] = field(default_factory=list)
    verify: list[RunRecord] = field(default_factory=list)
    runs: list[RunRecord] = field(default_factory=list)
    memory: list[RunRecord] = field(default_factory=list)  # workload = the big object's size
    memory_size: int = 0
    profile_md: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "started": self.started,
            "finished": self.finished,
            "command": self.command,
            "quick": self.quick,
            "rounds": self.rounds,
            "machine": self.machine,
            "targets": self.targets,
            "workloads": [vars(w) for w in self.workloads],
            "load_samples": self.load_samples,
            "verify": [r.to_json() for r in self.verify],
            "runs": [r.to_json() for r in self.runs],
            "memory": [r.to_json() for r in self.memory],
            "memory_size": self.memory_size,
            "profile_md": self.profile_md,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BenchResults:
        return cls(
            started=data["started"],
            finished=data["finished"],
            command=data["command"],
            quick=data["quick"],
            rounds=data["rounds"],
            machine=data["machine"],
            targets=data["targets"],
            workloads=[Workload(**w) for w in data["workloads"]],
            load_samples=data["load_samples"],
            verify=[RunRecord.from_json(r) for r in data["verify"]],
            runs=[RunRecord.from_json(r) for r in data["runs"]],
            memory=[RunRecord.from_json(r) for r in data["memory"]],
            memory_size=data["memory_size"],
            profile_md=data.get("profile_md", ""),
        )
