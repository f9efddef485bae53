"""Raising the open-files limit at start: every upload or download holds a client socket and
up to three node sockets, and a shell's default soft limit of 1024 runs out under a few
hundred of them (accept and connect then fail with EMFILE). The hard limit is the operator's
(systemd's LimitNOFILE, ulimit -Hn); only the soft one moves, as Go's runtime does."""

from __future__ import annotations

import logging
import resource
from pathlib import Path

log = logging.getLogger(__name__)
NR_OPEN = Path("/proc/sys/fs/nr_open")
DEFAULT_NR_OPEN = 1 << 20  # the kernel's default fs.nr_open, when /proc does not say


def kernel_cap(path: Path | None = None) -> int:
    """fs.nr_open, which no soft limit may pass: the target when the hard limit is unlimited."""
    try:
        return int((path or NR_OPEN).read_text())
    except (OSError, ValueError):
        return DEFAULT_NR_OPEN


def raise_open_files_limit() -> int:
    """Set the soft limit on open files to the hard one; the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = kernel_cap() if hard == resource.RLIM_INFINITY else hard
    if soft == resource.RLIM_INFINITY or soft >= wanted:
        return soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    except (ValueError, OSError) as exc:
        log.warning(
            "open files limit stays at %d, not %d (%s): raise LimitNOFILE or ulimit -n",
            soft,
            wanted,
            exc,
        )
        return soft
    log.info("open files limit raised from %d to %d", soft, wanted)
    return wanted
