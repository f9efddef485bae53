"""Helpers for tests that run real shardgate processes: bodies, API calls, replica checks, RSS."""

from __future__ import annotations

import hashlib
import json
import random
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from ring import Ring, load_ring_file, object_hash, partition_of
from shardgate.cli.dev import DevCluster
from shardgate.internal_api import object_path
from shardgate.signing import sign_request

MiB = 1024 * 1024


@dataclass
class Body:
    """A deterministic random body of `size` bytes, produced in chunks, never whole."""

    size: int
    seed: int
    chunk: int = MiB

    async def chunks(self) -> AsyncIterator[bytes]:
        rng = random.Random(self.seed)
        left = self.size
        while left > 0:
            piece = rng.randbytes(min(self.chunk, left))
            left -= len(piece)
            yield piece

    def sha256(self) -> str:
        digest = hashlib.sha256()
        rng = random.Random(self.seed)
        left = self.size
        while left > 0:
            piece = rng.randbytes(min(self.chunk, left))
            left -= len(piece)
            digest.update(piece)
        return digest.hexdigest()

    def bytes(self) -> bytes:
        rng = random.Random(self.seed)
        out = bytearray()
        left = self.size
        while left > 0:
            piece = rng.randbytes(min(self.chunk, left))
            left -= len(piece)
            out += piece
        return bytes(out)


class Api:
    """The public API of one gateway, with the admin key."""

    def __init__(self, session: aiohttp.ClientSession, url: str, key: str) -> None:
        self.session = session
        self.url = url
        self.auth = {"Authorization": f"Bearer {key}"}

    def object_url(self, bucket: str, key: str) -> str:
        return f"{self.url}/v1/objects/{bucket}/{key}"

    async def create_bucket(self, bucket: str) -> None:
        async with self.session.put(f"{self.url}/v1/buckets/{bucket}", headers=self.auth) as resp:
            assert resp.status in (200, 201), await resp.text()

    async def put(
        self, bucket: str, key: str, data: object, **headers: str
    ) -> tuple[int, dict[str, object]]:
        async with self.session.put(
            self.object_url(bucket, key), data=data, headers={**self.auth, **headers}
        ) as resp:
            return resp.status, await resp.json()

    async def get_sha256(self, bucket: str, key: str, **headers: str) -> tuple[int, str, int]:
        """Status, sha256 and length of a download, hashed as it streams."""
        digest = hashlib.sha256()
        size = 0
        async with self.session.get(
            self.object_url(bucket, key), headers={**self.auth, **headers}
        ) as resp:
            async for chunk in resp.content.iter_chunked(MiB):
                digest.update(chunk)
                size += len(chunk)
            return resp.status, digest.hexdigest(), size


def cluster_ring(cluster: DevCluster) -> Ring:
    return Ring(load_ring_file(cluster.ring_path))


async def replica_versions(
    session: aiohttp.ClientSession, ring: Ring, secret: str, bucket: str, key: str
) -> dict[str, tuple[str, str]]:
    """node id -> (version, etag) for every reachable node serving the object, asked directly."""
    obj_hash = object_hash(bucket, key)
    path = object_path(partition_of(obj_hash, ring.partition_power), obj_hash)
    found: dict[str, tuple[str, str]] = {}
    for node in ring.nodes:
        headers = sign_request(secret.encode(), "HEAD", path)
        try:
            async with session.head(node.url + path, headers=headers) as resp:
                if resp.status == 200:
                    found[node.id] = (
                        resp.headers["X-Shardgate-Version"],
                        resp.headers["ETag"].strip('"'),
                    )
        except aiohttp.ClientConnectorError:
            continue
    return found


def children_of(pid: int) -> list[int]:
    """Process ids whose parent is `pid`, read from /proc."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for {pid}")


@dataclass
class Sampler:
    """Samples a function on a thread every `interval` seconds while in a `with` block."""

    probe: Callable[[], object]
    interval: float = 0.05
    samples: list[object] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append(self.probe())
            time.sleep(self.interval)

    def __enter__(self) -> Sampler:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.samples.append(self.probe())


def nodes_holding(cluster: DevCluster, etag: str, size: int) -> set[str]:
    """Nodes with a committed version of these bytes at any address, read from their data dirs
    (form files and parts live at internal addresses, not at their object's)."""
    found = set()
    for node_id in cluster.node_ids:
        for meta_file in (cluster.data / node_id / "objects").rglob("*.meta"):
            meta = json.loads(meta_file.read_text())
            if meta["etag"] == etag and meta["size"] == size:
                found.add(node_id)
    return found
