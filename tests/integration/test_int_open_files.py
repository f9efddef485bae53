"""A node started from a shell whose soft limit on open files is the usual 1024 runs with the
hard limit instead (shardgate.open_files), read from the running process's /proc limits. The
low limit is set in a driver process that starts the node, never in pytest's own."""

from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path

import pytest

from shardgate.open_files import kernel_cap

SHELL_DEFAULT = 1024

DRIVER = """
import resource, sys
from pathlib import Path
from shardgate.cli.dev import DevCluster

hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
resource.setrlimit(resource.RLIMIT_NOFILE, (int(sys.argv[2]), hard))  # inherited by the node
cluster = DevCluster(Path(sys.argv[1]), quiet=True)
node = cluster.start_node("n1", port=0)
try:
    for line in Path(f"/proc/{node.process.pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            print("limits", resource.getrlimit(resource.RLIMIT_NOFILE)[0], line.split()[3])
finally:
    node.stop()
"""


def test_a_node_started_with_a_low_soft_limit_runs_with_the_hard_one(tmp_path: Path) -> None:
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard != resource.RLIM_INFINITY and hard <= SHELL_DEFAULT:
        pytest.skip(f"the hard limit here is {hard}: nothing to raise to")
    out = subprocess.run(
        [sys.executable, "-c", DRIVER, str(tmp_path / "cluster"), str(SHELL_DEFAULT)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    # The node's own output is relayed on the same stdout, so the answer is found by its tag.
    [answer] = [line.split() for line in out.splitlines() if line.startswith("limits ")]
    driver_soft, node_soft = int(answer[1]), int(answer[2])
    assert driver_soft == SHELL_DEFAULT
    assert node_soft == (kernel_cap() if hard == resource.RLIM_INFINITY else hard)
