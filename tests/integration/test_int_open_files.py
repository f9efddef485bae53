"""A node started from a shell whose soft limit on open files is the usual 1024 runs with the
hard limit instead (shardgate.open_files), read from the running process's /proc limits."""

from __future__ import annotations

import resource
from pathlib import Path

import pytest

from shardgate.cli.dev import DevCluster
from shardgate.open_files import UNLIMITED_CAP

SHELL_DEFAULT = 1024


def open_files_limit(pid: int) -> int:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            return int(line.split()[3])
    raise AssertionError(f"no open files limit in /proc/{pid}/limits")


def test_a_node_started_with_a_low_soft_limit_runs_with_the_hard_one(tmp_path: Path) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard <= SHELL_DEFAULT:
        pytest.skip(f"the hard limit here is {hard}: nothing to raise to")
    cluster = DevCluster(tmp_path / "cluster")
    resource.setrlimit(resource.RLIMIT_NOFILE, (SHELL_DEFAULT, hard))  # inherited by the node
    try:
        node = cluster.start_node("n1", port=0)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    try:
        expected = UNLIMITED_CAP if hard == resource.RLIM_INFINITY else hard
        assert open_files_limit(node.process.pid) == expected
    finally:
        node.stop()
