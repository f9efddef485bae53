"""shardgate.heap: once tuned, a chunk-sized buffer comes from the heap, where a freed one is
reused, rather than from a mapping of its own that goes back to the kernel when freed; the
operator's own glibc settings win. In child processes: the allocator is per process."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

CHILD = """
import ctypes, sys
from shardgate.heap import tune_allocator
tuned = tune_allocator() if sys.argv[1] == "tune" else None
buffer = bytearray(2 * 1024 * 1024)  # a chunk of the largest joined size, past glibc's default
address = ctypes.addressof((ctypes.c_char * len(buffer)).from_buffer(buffer))
for line in open("/proc/self/maps"):
    if line.rstrip().endswith("[heap]"):
        start, end = (int(part, 16) for part in line.split()[0].split("-"))
        print(tuned, start <= address < end)
        break
else:
    print(tuned, False)
"""

pytestmark = pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only"
)


def from_heap(how: str, **env: str) -> tuple[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("MALLOC_", "GLIBC_"))}
    out = subprocess.run(
        [sys.executable, "-c", CHILD, how],
        env={**clean, **env},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return out[0], out[1]


def test_a_tuned_process_takes_chunks_from_the_heap() -> None:
    assert from_heap("tune") == ("True", "True")


def test_an_untuned_process_maps_each_chunk_apart() -> None:
    assert from_heap("leave") == ("None", "False")


def test_the_operators_glibc_settings_are_left_alone() -> None:
    assert from_heap("tune", MALLOC_MMAP_THRESHOLD_="131072") == ("False", "False")


def test_tunables_for_other_parts_of_glibc_do_not_turn_it_off() -> None:
    assert from_heap("tune", GLIBC_TUNABLES="glibc.pthread.rseq=0") == ("True", "True")
    tunables = "glibc.pthread.rseq=0:glibc.malloc.mmap_threshold=131072"
    assert from_heap("tune", GLIBC_TUNABLES=tunables) == ("False", "False")
