"""glibc's allocator set for a server that streams bodies in 1 MiB chunks. By default a freed
chunk's pages go back to the kernel (an allocation past the mmap threshold is its own mapping;
a heap top past the trim threshold is cut off), so the next chunk faults every page in again: a
medium PUT took 130 to 170 minor faults in each of the gateway and the nodes, 26 to 33 with
these settings. Memory stays bounded by chunks in flight: what is kept is what a burst used,
up to the trim threshold past it."""

from __future__ import annotations

import ctypes
import logging
import os

from shardgate.config import MiB

log = logging.getLogger(__name__)
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # from glibc's malloc.h
MMAP_THRESHOLD = 4 * MiB  # above any chunk: chunks come from the heap, reused
TRIM_THRESHOLD = 64 * MiB  # free memory kept at the heap's top before it goes back
OPERATOR_SET = ("GLIBC_TUNABLES", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")


def tune_allocator() -> bool:
    """Apply the thresholds above unless the operator set glibc's own; whether they apply."""
    if any(name in os.environ for name in OPERATOR_SET):
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
