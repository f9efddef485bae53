"""Server processes as /proc sees them: CPU seconds used, and peak resident memory.

For the peak, each watched process's high-water mark (VmHWM) is reset when a watch starts
(by writing 5 to /proc/PID/clear_refs), a thread samples VmRSS every `interval` seconds, and
the peak reported is the larger of the two when the watch ends.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Self

KiB = 1024


def status_kib(pid: int, field: str) -> int | None:
    """A `VmRSS`/`VmHWM`-style field of /proc/PID/status in KiB; None if the process is gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return None


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used so far (0 if it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat.rsplit(")", 1)[1].split()  # after the command name, which may hold spaces
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_snapshot(pids: Mapping[str, int]) -> dict[str, float]:
    return {name: cpu_seconds(pid) for name, pid in pids.items()}


def reset_peak(pid: int) -> bool:
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


class RssWatch:
    def __init__(self, pids: Mapping[str, int], interval: float = 0.1) -> None:
        self._pids = dict(pids)
        self._interval = interval
        self._sampled: dict[str, int] = dict.fromkeys(self._pids, 0)
        self._reset: dict[str, bool] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample_until_stopped, daemon=True)
        self.peaks_mib: dict[str, float] = {}

    def _sample_once(self) -> None:
        for name, pid in self._pids.items():
            rss = status_kib(pid, "VmRSS")
            if rss is not None and rss > self._sampled[name]:
                self._sampled[name] = rss

    def _sample_until_stopped(self) -> None:
        while not self._stop.wait(self._interval):
            self._sample_once()

    def __enter__(self) -> Self:
        self._reset = {name: reset_peak(pid) for name, pid in self._pids.items()}
        self._sample_once()
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()
        self._sample_once()
        for name, pid in self._pids.items():
            peak = self._sampled[name]
            hwm = status_kib(pid, "VmHWM") if self._reset.get(name) else None
            if hwm is not None:
                peak = max(peak, hwm)
            self.peaks_mib[name] = peak / KiB
