"""shardgate as `shardgate dev` runs it: a gateway and three nodes, N=3, W=2, durable defaults
(every replica fsyncs its version's file and directory before it acknowledges)."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import quote

from bench.targets.base import Target
from shardgate.cli.dev import DevCluster

BUCKET = "bench"


class ShardgateTarget(Target):
    name = "shardgate"
    label = "shardgate (gateway + 3 nodes, N=3, W=2, fsync on)"

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir)
        self.cluster: DevCluster | None = None

    def start(self) -> None:
        self.cluster = DevCluster(self.workdir, port=0, quiet=True)
        self.cluster.start()
        status = _put_bucket(self.cluster.url, self.cluster.api_key)
        if status not in (200, 201):
            raise RuntimeError(f"creating bucket {BUCKET!r} answered {status}")

    def stop(self) -> None:
        if self.cluster is not None:
            self.cluster.stop()

    @property
    def url(self) -> str:
        assert self.cluster is not None, "shardgate target not started"
        return self.cluster.url

    @property
    def headers(self) -> Mapping[str, str]:
        assert self.cluster is not None, "shardgate target not started"
        return {"Authorization": f"Bearer {self.cluster.api_key}"}

    def object_url(self, key: str) -> str:
        return f"{self.url}/v1/objects/{BUCKET}/{quote(key)}"

    def processes(self) -> dict[str, int]:
        assert self.cluster is not None and self.cluster.gateway is not None
        pids = {"gateway": self.cluster.gateway.process.pid}
        pids.update({f"node {nid}": svc.process.pid for nid, svc in self.cluster.nodes.items()})
        return pids


def _put_bucket(url: str, api_key: str) -> int | None:
    request = urllib.request.Request(
        f"{url}/v1/buckets/{BUCKET}",
        data=json.dumps({}).encode(),
        method="PUT",
        headers={"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        response.read()
        return int(response.status)
