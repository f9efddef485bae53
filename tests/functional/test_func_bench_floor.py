"""bench.floor_servers, the floor bench/ANALYSIS.md reads shardgate's small figures against,
does the work it claims: three replicas of every body on disk, W=2 acknowledgements before the
answer, the md5 as the ETag, a GET of the same bytes, a DELETE from every replica."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from bench.floor_servers import gateway_app, node_app


@pytest.fixture
async def floor(tmp_path: Path) -> AsyncIterator[tuple[str, list[Path]]]:
    dirs = [tmp_path / f"n{index}" for index in range(3)]
    nodes = [TestServer(node_app(data)) for data in dirs]
    for server in nodes:
        await server.start_server()
    gateway = TestServer(gateway_app([str(server.make_url("")).rstrip("/") for server in nodes]))
    await gateway.start_server()
    try:
        yield str(gateway.make_url("")).rstrip("/"), dirs
    finally:
        for server in [gateway, *nodes]:
            await server.close()


def replicas(dirs: list[Path], key: str) -> list[bytes]:
    name = hashlib.sha256(key.encode()).hexdigest()
    return [(d / "objects" / name).read_bytes() for d in dirs if (d / "objects" / name).exists()]


async def test_a_put_lands_on_every_replica_and_reads_back(
    floor: tuple[str, list[Path]],
) -> None:
    url, dirs = floor
    body = os.urandom(5000)
    async with aiohttp.ClientSession() as session:
        async with session.put(f"{url}/o/a/b.bin", data=body) as resp:
            assert resp.status == 201
            assert await resp.json() == {"etag": hashlib.md5(body).hexdigest(), "size": 5000}
        assert len(replicas(dirs, "a/b.bin")) >= 2  # answered at W
        for _ in range(100):
            if len(replicas(dirs, "a/b.bin")) == 3:
                break
            await asyncio.sleep(0.02)
        assert replicas(dirs, "a/b.bin") == [body] * 3
        async with session.get(f"{url}/o/a/b.bin") as resp:
            assert (resp.status, await resp.read()) == (200, body)
        async with session.delete(f"{url}/o/a/b.bin") as resp:
            assert resp.status == 204
        for _ in range(100):
            if not replicas(dirs, "a/b.bin"):
                break
            await asyncio.sleep(0.02)
        assert replicas(dirs, "a/b.bin") == []
        async with session.get(f"{url}/o/a/b.bin") as resp:
            assert resp.status == 404
        assert all(not list((d / "tmp").iterdir()) for d in dirs), "no temp file left behind"
