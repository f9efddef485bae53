"""The direct paths, on the clusters the gateway targets started (no processes of their own):

- shardgate: `POST /v1/presign` (PUT) at the gateway, PUT the body to the node it names (which
  streams it to the other replicas as it arrives), then `POST .../commit` at the gateway (which
  publishes the copies, W=2);
  a GET is `POST /v1/presign` (GET) and a GET from the node it names.
- SeaweedFS: `GET /dir/assign` at the master (replication 002, its default), PUT the raw body to
  the volume server it names (which writes it to the two other replicas before answering); a GET
  goes to the same volume server with the same file id, which the client remembers.

Both are timed as a client must do them: every request of an operation counts. Neither has a
DELETE phase: shardgate has no direct delete, so the objects are deleted untimed (through the
gateway; SeaweedFS: on the volume server) to keep the disks from filling.
"""

from __future__ import annotations

from collections.abc import Mapping

import aiohttp

from bench.client import DIRECT_PHASES, BenchError, DirectPath, Location, json_answer
from bench.net import HOST
from bench.targets.base import Target
from bench.targets.seaweedfs import SeaweedFSTarget, weed_version
from bench.targets.shardgate import BUCKET, ShardgateTarget

CONTENT_TYPE = "application/octet-stream"


class ShardgateDirectTarget(Target, DirectPath):
    name = "shardgate-direct"
    label = (
        "shardgate direct path on the same cluster: presign + PUT to a node + commit; "
        "presign + GET from a node"
    )
    phases = DIRECT_PHASES

    def __init__(self, cluster: ShardgateTarget) -> None:
        super().__init__(cluster.workdir)
        self.cluster = cluster

    def start(self) -> None:
        if self.cluster.cluster is None:
            raise RuntimeError("start the shardgate target before its direct path")

    def stop(self) -> None:
        """The shardgate target owns the processes."""

    @property
    def headers(self) -> Mapping[str, str]:
        return self.cluster.headers

    def object_url(self, key: str) -> str:
        """The gateway's URL: only the untimed cleanup deletes through it."""
        return self.cluster.object_url(key)

    def processes(self) -> dict[str, int]:
        return self.cluster.processes()

    async def _presign(self, session: aiohttp.ClientSession, key: str, method: str) -> Location:
        body = {"bucket": BUCKET, "key": key, "method": method}
        if method == "PUT":
            body["content_type"] = CONTENT_TYPE
        url = f"{self.cluster.url}/v1/presign"
        async with session.post(url, json=body, headers=self.headers) as response:
            answer = await response.read()
            if response.status != 200:
                raise BenchError(f"presign {method} answered {response.status}: {answer[:200]!r}")
        signed = json_answer(answer, f"presign {method}")
        try:
            return Location(str(signed["url"]), dict(signed["headers"]), signed["upload_id"])
        except (KeyError, TypeError, ValueError) as exc:
            raise BenchError(f"presign {method} answered {answer[:200]!r}") from exc

    async def put_location(self, session: aiohttp.ClientSession, key: str) -> Location:
        return await self._presign(session, key, "PUT")

    async def put_done(
        self, session: aiohttp.ClientSession, key: str, location: Location, answer: bytes, size: int
    ) -> None:
        ack = json_answer(answer, "direct PUT")
        if ack.get("size") != size or not isinstance(ack.get("etag"), str):
            raise BenchError(f"direct PUT of {size} bytes answered {answer[:200]!r}")
        body = {"upload_id": location.ticket, "size": size, "md5": ack["etag"]}
        url = f"{self.cluster.object_url(key)}/commit"
        async with session.post(url, json=body, headers=self.headers) as response:
            text = await response.read()
            if response.status != 201:
                raise BenchError(f"commit answered {response.status}: {text[:200]!r}")

    async def get_location(self, session: aiohttp.ClientSession, key: str) -> Location:
        return await self._presign(session, key, "GET")


class SeaweedFSVolumeTarget(Target, DirectPath):
    name = "seaweedfs-volume"
    label = (
        "SeaweedFS volume path on the same cluster: /dir/assign on the master + PUT to the "
        "volume server; GET from it"
    )
    phases = DIRECT_PHASES

    def __init__(self, cluster: SeaweedFSTarget) -> None:
        super().__init__(cluster.workdir)
        self.cluster = cluster
        self._where: dict[str, str] = {}  # key -> http://volume-server/fid

    def start(self) -> None:
        if self.cluster.master is None or not self.cluster.master_port:
            raise RuntimeError("start the SeaweedFS target before its volume path")

    def stop(self) -> None:
        """The SeaweedFS target owns the processes."""

    def object_url(self, key: str) -> str:
        url = self._where.get(key)
        if url is None:
            raise BenchError(f"{key} was never stored (its PUT failed)")
        return url

    def processes(self) -> dict[str, int]:
        """The master and the volume servers: the filer is idle on this path."""
        return {n: pid for n, pid in self.cluster.processes().items() if n != "filer"}

    def describe(self) -> str:
        return f"{self.label}; {weed_version()}"

    async def put_location(self, session: aiohttp.ClientSession, key: str) -> Location:
        url = f"http://{HOST}:{self.cluster.master_port}/dir/assign"
        async with session.get(url) as response:
            answer = await response.read()
            if response.status != 200:
                raise BenchError(f"/dir/assign answered {response.status}: {answer[:200]!r}")
        assigned = json_answer(answer, "/dir/assign")
        if "fid" not in assigned or "url" not in assigned:
            raise BenchError(f"/dir/assign answered {answer[:200]!r}")
        return Location(f"http://{assigned['url']}/{assigned['fid']}")

    async def put_done(
        self, session: aiohttp.ClientSession, key: str, location: Location, answer: bytes, size: int
    ) -> None:
        ack = json_answer(answer, "volume PUT")
        if ack.get("size") != size:
            raise BenchError(f"volume PUT of {size} bytes answered {answer[:200]!r}")
        self._where[key] = location.url

    async def get_location(self, session: aiohttp.ClientSession, key: str) -> Location:
        return Location(self.object_url(key))
