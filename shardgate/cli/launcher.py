"""Start shardgate services as child processes and learn their URLs from their start-up line."""

from __future__ import annotations

import os
import re
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass

from shardgate.web import PARENT_ENV

_LISTENING = re.compile(r"listening on (http://\S+)")


class LaunchError(Exception):
    """A service exited or stayed silent instead of announcing its address."""


@dataclass
class Service:
    name: str
    process: subprocess.Popen[str]
    url: str

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()


HOST = "127.0.0.1"  # every process the launchers start listens on loopback only


def free_ports(count: int) -> list[int]:
    """Ports the kernel hands out for port 0, all held open at once so they are distinct."""
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind((HOST, 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def spawn(
    name: str, args: list[str], env: Mapping[str, str] | None = None, timeout: float = 30.0
) -> Service:
    """Run `python -m shardgate ARGS` and wait for it to print where it listens."""
    process = subprocess.Popen(
        [sys.executable, "-m", "shardgate", *args],
        stdout=subprocess.PIPE,
        text=True,
        # The child stops by itself if this launcher dies (see shardgate.web.PARENT_ENV).
        env={**os.environ, **(env or {}), PARENT_ENV: str(os.getpid())},
        start_new_session=True,
    )
    assert process.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    try:
        while (left := deadline - time.monotonic()) > 0:
            if not selector.select(left):
                continue
            line = process.stdout.readline()
            if not line:
                raise LaunchError(f"{name} exited with {process.wait()} before it was ready")
            if match := _LISTENING.search(line):
                threading.Thread(target=_relay, args=(name, process), daemon=True).start()
                return Service(name, process, match[1])
        raise LaunchError(f"{name} did not announce its address within {timeout:.0f}s")
    except BaseException:
        process.kill()
        process.wait()
        raise
    finally:
        selector.close()


def _relay(name: str, process: subprocess.Popen[str]) -> None:
    """Keep reading the child's stdout so it never blocks on a full pipe."""
    assert process.stdout is not None
    for line in process.stdout:
        print(f"[{name}] {line}", end="", flush=True)
