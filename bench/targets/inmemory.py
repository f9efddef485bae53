"""The in-memory ceiling: bench.memserver in its own process, keeping objects in a dict."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

from bench import process
from bench.net import HOST, http_status, wait_until
from bench.targets.base import Target
from shardgate.cli.launcher import free_ports

REPO = Path(__file__).resolve().parents[2]


class InMemoryTarget(Target):
    name = "memory"
    label = "in-memory aiohttp server (Python ceiling)"

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir)
        self.server: process.Child | None = None
        self.port = 0

    def start(self) -> None:
        (self.port,) = free_ports(1)
        argv = [sys.executable, "-m", "bench.memserver", "--host", HOST, "--port", str(self.port)]
        self.server = process.start("memserver", argv, self.workdir / "memserver.log", cwd=REPO)
        server = self.server
        wait_until(
            "in-memory server",
            lambda: http_status(f"http://{HOST}:{self.port}/healthz") == 200,
            30,
            server.alive,
        )

    def stop(self) -> None:
        if self.server is not None:
            process.stop([self.server], signal.SIGTERM, 10)

    def object_url(self, key: str) -> str:
        return f"http://{HOST}:{self.port}/o/{key}"

    def processes(self) -> dict[str, int]:
        return {"memserver": self.server.pid} if self.server is not None else {}
