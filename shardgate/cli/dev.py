"""`shardgate dev`: a gateway and three nodes on 127.0.0.1, as child processes, for trying
shardgate and for tests that need real processes to kill and restart."""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import threading
from pathlib import Path

from ring import Node, RingSpec, load_ring_file, save_ring_file
from shardgate.cli.launcher import HOST, Service, spawn


def _secret_file(path: Path) -> str:
    """Read a dev secret, creating it (owner-only) on first use so restarts keep their keys."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(32))
    return path.read_text().strip()


class DevCluster:
    """Nodes n1..nN on free ports, a ring file naming them, and a gateway on `port`."""

    def __init__(
        self, data: Path, *, port: int = 0, nodes: int = 3, replicas: int = 3, quiet: bool = False
    ) -> None:
        self.data = data.resolve()
        self.port = port
        self.node_ids = [f"n{i}" for i in range(1, nodes + 1)]
        self.replicas = replicas
        self.quiet = quiet
        self.ring_path = self.data / "ring.json"
        self.cluster_secret = _secret_file(self.data / "secrets" / "cluster.key")
        self.api_key = _secret_file(self.data / "secrets" / "admin.key")
        self.env = {
            "SHARDGATE_CLUSTER_SECRET_FILE": str(self.data / "secrets" / "cluster.key"),
            "SHARDGATE_ADMIN_KEY_FILE": str(self.data / "secrets" / "admin.key"),
        }
        self.nodes: dict[str, Service] = {}
        self.gateway: Service | None = None

    @property
    def url(self) -> str:
        assert self.gateway is not None, "cluster not started"
        return self.gateway.url

    def start(self) -> None:
        try:
            for node_id in self.node_ids:
                self.start_node(node_id, port=0)
            self._write_ring()
            self.start_gateway()
            (self.data / "dev.env").write_text(
                f"SHARDGATE_URL={self.url}\nSHARDGATE_API_KEY={self.api_key}\n"
            )
        except BaseException:
            self.stop()
            raise

    def start_node(self, node_id: str, port: int | None = None) -> Service:
        """Start (or restart, on its old port unless told otherwise) one node."""
        if port is None:
            port = self.nodes[node_id].port
        args = [
            "node",
            "--id",
            node_id,
            "--data",
            str(self.data / node_id),
            "--ring",
            str(self.ring_path),
            "--host",
            HOST,
            "--port",
            str(port),
        ]
        service = spawn(node_id, args, self.env)
        self.nodes[node_id] = service
        return service

    def start_gateway(self) -> Service:
        args = ["gateway", "--data", str(self.data / "gateway"), "--ring", str(self.ring_path)]
        self.gateway = spawn("gateway", [*args, "--host", HOST, "--port", str(self.port)], self.env)
        return self.gateway

    def kill_node(self, node_id: str) -> None:
        """SIGKILL, as a crash or power cut would stop it: no cleanup runs."""
        self.nodes[node_id].kill()

    def _write_ring(self) -> None:
        epoch = load_ring_file(self.ring_path).epoch + 1 if self.ring_path.exists() else 1
        nodes = tuple(Node(id=node_id, url=self.nodes[node_id].url) for node_id in self.node_ids)
        save_ring_file(
            self.ring_path,
            RingSpec(epoch=epoch, partition_power=12, replicas=self.replicas, nodes=nodes),
        )

    def stop(self) -> None:
        if self.gateway is not None:
            self.gateway.stop()
        for service in self.nodes.values():
            service.stop()

    def banner(self) -> str:
        auth = f'-H "Authorization: Bearer {self.api_key}"'
        lines = [
            "shardgate dev cluster is up",
            f"  gateway   {self.url}",
            *(f"  node {node_id}   {service.url}" for node_id, service in self.nodes.items()),
            f"  api key   {self.api_key}",
            f"  env file  {self.data / 'dev.env'}",
            "try:",
            f"  curl -X PUT {auth} {self.url}/v1/buckets/demo",
            f"  curl -T README.md {auth} {self.url}/v1/objects/demo/readme.md",
            f"  curl {auth} {self.url}/v1/objects/demo/readme.md",
            "Ctrl-C stops the cluster.",
        ]
        return "\n".join(lines)


def _dev(args: argparse.Namespace) -> int:
    cluster = DevCluster(args.data, port=args.port)
    cluster.start()
    print(cluster.banner(), flush=True)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        while not stop.wait(1.0):
            for service in [cluster.gateway, *cluster.nodes.values()]:
                if service is not None and not service.alive():
                    print(
                        f"{service.name} exited with {service.process.returncode}; stopping",
                        flush=True,
                    )
                    stop.set()
    finally:
        cluster.stop()
    print("shardgate dev cluster stopped", flush=True)
    return 0


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    dev = sub.add_parser("dev", help="run a local gateway and three nodes")
    dev.add_argument("--data", type=Path, default=Path("data"), help="where everything is kept")
    dev.add_argument("--port", type=int, default=8080, help="gateway port (0 picks a free one)")
    dev.set_defaults(func=_dev)
