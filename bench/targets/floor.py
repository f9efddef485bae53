"""The floor of shardgate's shape in Python (bench.floor_servers): a bare gateway and three
bare nodes, N=3, W=2, one file fsync and one directory fsync per replica."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

from bench import process
from bench.net import HOST, http_status, wait_until
from bench.targets.base import Target
from shardgate.cli.launcher import free_ports

REPO = Path(__file__).resolve().parents[2]
NODES = 3


class FloorTarget(Target):
    name = "floor"
    label = "bare Python gateway + 3 nodes (N=3, W=2, fsync on; no auth, catalog or checks)"

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir)
        self.children: dict[str, process.Child] = {}
        self.port = 0

    def start(self) -> None:
        *node_ports, self.port = free_ports(NODES + 1)
        urls = []
        for index, port in enumerate(node_ports, start=1):
            name = f"node n{index}"
            data = self.workdir / f"n{index}"
            self._spawn(name, ["node", "--data", str(data), "--port", str(port)], port)
            urls.append(f"http://{HOST}:{port}")
        self._spawn("gateway", ["gateway", "--nodes", ",".join(urls), "--port", str(self.port)])

    def _spawn(self, name: str, args: list[str], port: int | None = None) -> None:
        port = self.port if port is None else port
        argv = [sys.executable, "-m", "bench.floor_servers", *args, "--host", HOST]
        log = self.workdir / f"{name.replace(' ', '-')}.log"
        child = self.children[name] = process.start(name, argv, log, cwd=REPO)
        wait_until(
            f"floor {name}",
            lambda: http_status(f"http://{HOST}:{port}/healthz") == 200,
            30,
            child.alive,
        )

    def stop(self) -> None:
        process.stop(list(self.children.values()), signal.SIGTERM, 10)

    def object_url(self, key: str) -> str:
        return f"http://{HOST}:{self.port}/o/{key}"

    def processes(self) -> dict[str, int]:
        return {name: child.pid for name, child in self.children.items()}
