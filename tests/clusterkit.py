"""Helpers for tests that run real shardgate processes: bodies, API calls, replica checks, RSS."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import random
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from ring import Ring, load_ring_file, object_hash, partition_of
from shardgate.cli.dev import DevCluster
from shardgate.internal_api import object_path
from shardgate.signing import sign_request
from storage_node.version_file import body_size_at, read_meta_at

KiB = 1024
MiB = 1024 * KiB


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


def cli(*args: str) -> list[str]:
    """The command line, run as a user would: `python -m shardgate ...`."""
    return [sys.executable, "-m", "shardgate", *args]


def cli_env(cluster: DevCluster) -> dict[str, str]:
    return {**os.environ, "SHARDGATE_URL": cluster.url, "SHARDGATE_API_KEY": cluster.api_key}


async def run_cli(cluster: DevCluster, *args: str) -> subprocess.CompletedProcess[str]:
    """Run `shardgate ARGS` against the cluster's gateway, off the event loop."""
    return await asyncio.to_thread(
        subprocess.run,
        cli(*args),
        env=cli_env(cluster),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def cluster_ring(cluster: DevCluster) -> Ring:
    """The ring the cluster's gateway and nodes were started with."""
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
    """Resident set size of a process, read from /proc."""
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
        for data_file in (cluster.data / node_id / "objects").rglob("*.data"):
            try:
                meta = read_meta_at(data_file)
            except FileNotFoundError:
                continue  # withdrawn or reclaimed between the listing and the read: not held
            if meta.etag == etag and meta.size == size:
                found.add(node_id)
    return found


def md5_hex(data: bytes) -> str:
    """The hex MD5 of `data`, as the gateway and nodes compute ETags."""
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def write_file(path: Path, size: int, seed: int) -> str:
    """Write `size` deterministic random bytes in 1 MiB pieces; returns their sha256."""
    rng = random.Random(seed)
    digest = hashlib.sha256()
    with path.open("wb") as fh:
        left = size
        while left > 0:
            piece = rng.randbytes(min(MiB, left))
            left -= len(piece)
            digest.update(piece)
            fh.write(piece)
    return digest.hexdigest()


def start_cluster(
    data: Path, secrets: dict[str, str] | None = None, **gateway_settings: object
) -> DevCluster:
    """A started cluster of its own, with SHARDGATE_GATEWAY_<NAME> settings for its gateway
    (and `secrets`, whole environment variables, beside them)."""
    cluster = DevCluster(data, port=0)
    cluster.env.update(secrets or {})
    cluster.env.update(gateway_env(**gateway_settings))
    cluster.start()
    return cluster


def gateway_env(**gateway_settings: object) -> dict[str, str]:
    """SHARDGATE_GATEWAY_<NAME> variables for gateway settings (booleans as true/false)."""
    return {
        f"SHARDGATE_GATEWAY_{name.upper()}": str(v).lower() if isinstance(v, bool) else str(v)
        for name, v in gateway_settings.items()
    }


def scratch_cluster(tmp_path_factory: pytest.TempPathFactory, name: str) -> Iterator[DevCluster]:
    """A cluster of its own for a fixture to yield from; its data is removed afterwards."""
    data = tmp_path_factory.mktemp(name)
    cluster = DevCluster(data, port=0)
    cluster.start()
    yield cluster
    cluster.stop()
    shutil.rmtree(data, ignore_errors=True)


async def put_bucket(api: Api, bucket: str, **policy: Any) -> None:
    """Create or update a bucket with the given policy fields."""
    async with api.session.put(
        f"{api.url}/v1/buckets/{bucket}", json=policy, headers=api.auth
    ) as resp:
        assert resp.status in (200, 201), await resp.text()


async def create_key(
    api: Api, name: str, rights: list[str], buckets: list[str] | None
) -> dict[str, Any]:
    """Create an API key with the admin key; the gateway's answer (with "key" and "id")."""
    async with api.session.post(
        f"{api.url}/v1/keys",
        json={"name": name, "rights": rights, "buckets": buckets},
        headers=api.auth,
    ) as resp:
        assert resp.status == 201, await resp.text()
        body: dict[str, Any] = await resp.json()
    return body


async def metric_samples(session: aiohttp.ClientSession, url: str) -> list[Sample]:
    """Every sample a service exposes on its /metrics."""
    async with session.get(f"{url}/metrics") as resp:
        text = await resp.text()
    return [s for family in text_string_to_metric_families(text) for s in family.samples]


async def metric(session: aiohttp.ClientSession, url: str, name: str) -> float:
    """The first sample called `name` on a service's /metrics; fails when there is none."""
    for sample in await metric_samples(session, url):
        if sample.name == name:
            return sample.value
    raise AssertionError(f"no {name} in /metrics")


async def labelled_metric(api: Api, name: str, **labels: str) -> float:
    """The gateway's sample called `name` with exactly these labels; 0.0 when absent."""
    for sample in await metric_samples(api.session, api.url):
        if sample.name == name and sample.labels == labels:
            return float(sample.value)
    return 0.0


async def wait_for_metric(api: Api, name: str, value: float, timeout: float = 10.0) -> None:
    """Wait until the gateway's unlabelled `name` reads `value`; fail if it does not in time."""
    deadline = time.monotonic() + timeout
    while (seen := await labelled_metric(api, name)) != value and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    assert seen == value, f"{name} stayed at {seen}, expected {value}"


def tmp_files(cluster: DevCluster) -> list[Path]:
    """Every file in every node's tmp directory."""
    return [p for node_id in cluster.node_ids for p in (cluster.data / node_id / "tmp").iterdir()]


async def wait_tmp_empty(cluster: DevCluster, timeout: float = 10.0) -> None:
    """Wait until no node holds a temp file; fail if some remain after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while (left := tmp_files(cluster)) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert left == [], f"temp files left on nodes: {left}"


def object_files(cluster: DevCluster, bucket: str, key: str) -> tuple[str, ...]:
    """Every file under the object's directory on every node (versions, metadata, tombstones)."""
    obj_hash = object_hash(bucket, key)
    partition = partition_of(obj_hash, cluster_ring(cluster).partition_power)
    found = []
    for node_id in cluster.node_ids:
        directory = cluster.data / node_id / "objects" / str(partition) / obj_hash
        if directory.is_dir():
            found += [f"{node_id}/{p.name}" for p in directory.iterdir()]
    return tuple(sorted(found))


def committed_bytes(cluster: DevCluster) -> int:
    """Bytes of committed versions on every node, their trailers aside."""
    total = 0
    for node_id in cluster.node_ids:
        for path in (cluster.data / node_id / "objects").rglob("*.data"):
            with contextlib.suppress(FileNotFoundError):  # reclaimed since the listing
                total += body_size_at(path)
    return total


@dataclass(frozen=True)
class Presigned:
    """What POST /v1/presign answered."""

    url: str
    method: str
    headers: dict[str, str]
    fields: dict[str, str]
    expires_at: str
    upload_id: str | None

    @property
    def token(self) -> str:
        return parse_qs(urlsplit(self.url).query)["token"][0]

    @property
    def expires(self) -> float:
        return datetime.fromisoformat(self.expires_at.replace("Z", "+00:00")).timestamp()

    def with_token(self, token: str) -> str:
        return f"{self.url.split('?', 1)[0]}?token={token}"


async def presign(api: Api, bucket: str, key: str, **body: Any) -> Presigned:
    """Ask the gateway for a presigned direct upload; fails unless it answers 200."""
    async with api.session.post(
        f"{api.url}/v1/presign", json={"bucket": bucket, "key": key, **body}, headers=api.auth
    ) as resp:
        answer = await resp.json()
        assert resp.status == 200, answer
    return Presigned(**answer)


async def commit(
    api: Api, bucket: str, key: str, upload_id: str | None, body: Body
) -> dict[str, Any]:
    """Commit a direct upload of `body` with its size and md5; fails unless it answers 201."""
    async with api.session.post(
        f"{api.object_url(bucket, key)}/commit",
        json={"upload_id": upload_id, "size": body.size, "md5": md5_hex(body.bytes())},
        headers=api.auth,
    ) as resp:
        answer: dict[str, Any] = await resp.json()
        assert resp.status == 201, answer
    return answer


def node_dir(cluster: DevCluster, url: str) -> Path:
    """The data directory of the node a presigned URL points at."""
    for node_id, service in cluster.nodes.items():
        if url.startswith(service.url + "/"):
            return cluster.data / node_id
    raise AssertionError(f"{url} is no node's URL")


def kept(cluster: DevCluster, url: str, upload_id: str | None) -> list[Path]:
    """Bytes the node still holds for an upload: temp files and the pending data file."""
    root = node_dir(cluster, url)
    return [*(root / "tmp").iterdir(), *(root / "pending").glob(f"{upload_id}.data")]


def kept_anywhere(cluster: DevCluster, upload_id: str | None) -> list[Path]:
    """Bytes any node holds for an upload: temp files, and the pending data file of the upload
    or of an early copy of it."""
    return [
        path
        for node_id in cluster.node_ids
        for path in kept(cluster, cluster.nodes[node_id].url + "/", upload_id)
    ]


async def wait_nothing_kept(
    cluster: DevCluster, upload_id: str | None, timeout: float = 10.0
) -> None:
    """Wait until no node holds bytes of the upload (peers drop an aborted early copy as its
    connection closes); fail if some remain after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while (left := kept_anywhere(cluster, upload_id)) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert left == [], f"bytes of upload {upload_id} left on nodes: {left}"


def start_logged_cluster(data: Path, log: Path, env: dict[str, str]) -> DevCluster:
    """A started cluster whose services write their logs (stderr) to `log`, for tests that read
    log lines; `env` adds SHARDGATE_* settings for every service."""
    cluster = DevCluster(data, port=0)
    cluster.env.update(env)
    saved = os.dup(2)
    with log.open("ab") as sink:
        os.dup2(sink.fileno(), 2)  # the children inherit this stderr; ours is put back below
        try:
            cluster.start()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
    return cluster
