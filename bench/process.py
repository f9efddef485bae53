"""Child processes the benchmark starts itself: logged to a file, killed with their parent, and
stopped with a chosen signal, a grace period, then SIGKILL."""

from __future__ import annotations

import ctypes
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """If the benchmark itself is killed outright, its servers go with it."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    _log: IO[bytes]

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def start(name: str, argv: Sequence[str], log_path: Path, cwd: Path | None = None) -> Child:
    log = log_path.open("wb")
    try:
        process = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            # Its own session: a Ctrl-C in the terminal reaches only the benchmark, which then
            # stops each server in the order and with the signal that server needs.
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
    except BaseException:
        log.close()
        raise
    return Child(name, process, log_path, log)


def stop(children: Sequence[Child], sig: signal.Signals, grace_s: float) -> None:
    """Send `sig` to all, wait up to `grace_s` for them together, SIGKILL whoever is left."""
    for child in children:
        if child.alive():
            child.process.send_signal(sig)
    deadline = time.monotonic() + grace_s
    for child in children:
        try:
            child.process.wait(max(deadline - time.monotonic(), 0.01))
        except subprocess.TimeoutExpired:
            child.process.kill()
            child.process.wait()
        child._log.close()
