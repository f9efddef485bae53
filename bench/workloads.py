"""The workloads every target runs: object size, object count and requests in flight."""

from __future__ import annotations

from dataclasses import dataclass

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB


@dataclass(frozen=True)
class Workload:
    name: str
    size: int
    count: int
    concurrency: int

    def describe(self) -> str:
        return (
            f"{self.name}: {human_size(self.size)} x {self.count} at concurrency {self.concurrency}"
        )


FULL = (
    Workload("small", 4 * KiB, 5000, 32),
    Workload("medium", 1 * MiB, 500, 16),
    Workload("large", 64 * MiB, 12, 4),
)

# The one-minute smoke run: the same sizes and concurrency, far fewer objects.
QUICK = (
    Workload("small", 4 * KiB, 400, 32),
    Workload("medium", 1 * MiB, 40, 16),
    Workload("large", 64 * MiB, 4, 4),
)

# The untimed correctness pass that precedes the full run (every GET body hashed).
VERIFY = (
    Workload("small", 4 * KiB, 200, 32),
    Workload("medium", 1 * MiB, 32, 16),
    Workload("large", 64 * MiB, 4, 4),
)


def human_size(size: int) -> str:
    for unit, scale in (("GiB", GiB), ("MiB", MiB), ("KiB", KiB)):
        if size >= scale and size % scale == 0:
            return f"{size // scale} {unit}"
    return f"{size} B"
