"""Must-show 1 and 8: `shardgate dev` as a user runs it; bytes round-trip at every size and sit
on exactly three distinct nodes; Ctrl-C stops every process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from clusterkit import Api, Body, children_of, replica_versions

from ring import Ring, load_ring_file

SIZES = [0, 1, 64 * 1024, 8 * 1024 * 1024, 300 * 1024 * 1024]


class RunningDev:
    def __init__(self, data: Path, process: subprocess.Popen[str], env: dict[str, str]) -> None:
        self.data = data
        self.process = process
        self.env = env


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDev]:
    data = tmp_path_factory.mktemp("dev")
    process = subprocess.Popen(
        [sys.executable, "-m", "shardgate", "dev", "--data", str(data), "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    banner = []
    for line in process.stdout:
        banner.append(line)
        if line.startswith("Ctrl-C"):
            break
    else:
        pytest.fail(f"shardgate dev exited early: {''.join(banner)}")
    env = dict(line.split("=", 1) for line in (data / "dev.env").read_text().split())
    assert env["SHARDGATE_URL"] in "".join(banner) and env["SHARDGATE_API_KEY"] in "".join(banner)
    yield RunningDev(data, process, env)
    if process.poll() is None:
        process.kill()


@pytest.mark.slow
@pytest.mark.parametrize("size", SIZES)
async def test_round_trip_through_dev_cluster(
    dev: RunningDev, session: aiohttp.ClientSession, size: int
) -> None:
    api = Api(session, dev.env["SHARDGATE_URL"], dev.env["SHARDGATE_API_KEY"])
    await api.create_bucket("roundtrip")
    body = Body(size, seed=size)
    key = f"sizes/{size}.bin"
    status, stored = await api.put("roundtrip", key, body.chunks(), **{"Content-Length": str(size)})
    assert status == 201, stored
    assert stored["size"] == size
    assert len(set(stored["replicas"])) == 3  # type: ignore[arg-type]

    status, digest, length = await api.get_sha256("roundtrip", key)
    assert (status, length, digest) == (200, size, body.sha256())

    ring = Ring(load_ring_file(dev.data / "ring.json"))
    secret = (dev.data / "secrets" / "cluster.key").read_text().strip()
    on_nodes = await replica_versions(session, ring, secret, "roundtrip", key)
    assert sorted(on_nodes) == sorted(stored["replicas"])  # type: ignore[arg-type]
    assert {version for version, _ in on_nodes.values()} == {stored["version"]}
    assert {etag for _, etag in on_nodes.values()} == {stored["etag"]}


def test_readme_walkthrough_works(dev: RunningDev) -> None:
    """The README's curl walk-through, run as written against the dev cluster."""
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    script = readme.split("<!-- walkthrough -->")[1].split("```bash")[1].split("```")[0]
    env = {**os.environ, "DEV_ENV": str(dev.data / "dev.env")}
    script = script.replace("data/dev.env", "$DEV_ENV")
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr + result.stdout
    assert "hello, shardgate" in result.stdout


def test_ctrl_c_stops_every_process(dev: RunningDev) -> None:
    children = children_of(dev.process.pid)
    assert len(children) == 4, children
    dev.process.send_signal(signal.SIGINT)
    assert dev.process.wait(30) == 0
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and any(Path(f"/proc/{pid}").exists() for pid in children):
        time.sleep(0.1)
    assert not [pid for pid in children if Path(f"/proc/{pid}").exists()]
