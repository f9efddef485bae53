"""glibc's allocator set for a server that streams bodies in 1 MiB chunks: by default a freed
chunk's pages go back to the kernel (its own mapping, or a trimmed heap top), and the next
chunk faults every page in again. Each arena now keeps up to the trim threshold of what a burst
used; the figures are in README.md (Deploying) and bench/ANALYSIS.md."""

from __future__ import annotations

import ctypes
import logging
import os
from collections.abc import Mapping

from shardgate.config import MiB

log = logging.getLogger(__name__)
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # from glibc's malloc.h
MMAP_THRESHOLD = 4 * MiB  # above any chunk: chunks come from the heap, reused
TRIM_THRESHOLD = 16 * MiB  # free memory an arena keeps at its top before it goes back
OPERATOR_SET = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")


def tune_allocator(environ: Mapping[str, str] = os.environ) -> bool:
    """Apply the thresholds above unless the operator set glibc's own; whether they apply."""
    if any(name in environ for name in OPERATOR_SET) or "glibc.malloc." in environ.get(
        "GLIBC_TUNABLES", ""
    ):
        log.info("malloc thresholds left as the environment sets them")
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False  # not glibc (musl, macOS): their allocators have no such thresholds
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(
        mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) and mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )
