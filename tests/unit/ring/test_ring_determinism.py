"""Every process that loads the same ring file must place every partition the same way."""

import hashlib
import inspect
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ring import Node, Ring, RingSpec, load_ring_file, save_ring_file

_ROOT = Path(__file__).resolve().parents[3]


def _placement_digest(ring: Ring) -> str:
    lines = (
        ",".join(node.id for node in ring.primaries(partition))
        for partition in range(2**ring.partition_power)
    )
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


# The child runs this module's own digest function, so both sides hash identically.
_CHILD = "\n".join(
    [
        "import hashlib, sys",
        "from ring import Ring, load_ring_file",
        textwrap.dedent(inspect.getsource(_placement_digest)),
        "print(_placement_digest(Ring(load_ring_file(sys.argv[1]))))",
    ]
)


@pytest.mark.parametrize("strategy", ["ketama", "rendezvous"])
def test_same_ring_file_places_alike_in_every_process(strategy: str, tmp_path: Path) -> None:
    nodes = tuple(
        Node(f"node-{i}", f"http://127.0.0.1:{9000 + i}", weight=1.0 + i % 3, zone=f"z{i % 3}")
        for i in range(6)
    )
    path = tmp_path / "ring.json"
    save_ring_file(path, RingSpec(1, 12, 3, nodes, strategy))

    digests = []
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(_ROOT)}
        done = subprocess.run(
            [sys.executable, "-c", _CHILD, str(path)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        digests.append(done.stdout.strip())

    assert digests[0] == digests[1] == _placement_digest(Ring(load_ring_file(path)))
