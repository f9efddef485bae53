"""bench.floor_servers, the floor bench/ANALYSIS.md reads shardgate's figures against, does the
work it claims: three replicas of every body on disk, W=2 acknowledgements before the answer,
the md5 as the ETag, a GET of the same bytes, a DELETE from every replica; bodies longer than a
chunk streamed both ways, and a replica that is down, or breaks off part-way, does not stop the
others."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bench.floor_servers import CHUNK, gateway_app, node_app


@dataclass
class Floor:
    url: str
    dirs: list[Path]
    nodes: list[TestServer]


@pytest.fixture
async def floor(tmp_path: Path) -> AsyncIterator[Floor]:
    dirs = [tmp_path / f"n{index}" for index in range(3)]
    nodes = [TestServer(node_app(data)) for data in dirs]
    for server in nodes:
        await server.start_server()
    gateway = TestServer(gateway_app([str(server.make_url("")).rstrip("/") for server in nodes]))
    await gateway.start_server()
    try:
        yield Floor(str(gateway.make_url("")).rstrip("/"), dirs, nodes)
    finally:
        for server in [gateway, *nodes]:
            await server.close()


def replicas(dirs: list[Path], key: str) -> list[bytes]:
    name = hashlib.sha256(key.encode()).hexdigest()
    return [(d / "objects" / name).read_bytes() for d in dirs if (d / "objects" / name).exists()]


async def settled(dirs: list[Path], key: str, count: int) -> list[bytes]:
    """The replicas once `count` of them are on disk (the last finishes after the answer)."""
    for _ in range(250):
        if len(found := replicas(dirs, key)) == count:
            return found
        await asyncio.sleep(0.02)
    return replicas(dirs, key)


@pytest.mark.parametrize("size", [5000, 9 * 1024 * 1024 + 5], ids=["whole", "streamed"])
async def test_a_put_lands_on_every_replica_and_reads_back(floor: Floor, size: int) -> None:
    url, dirs = floor.url, floor.dirs
    body = os.urandom(size)
    async with aiohttp.ClientSession() as session:
        async with session.put(f"{url}/o/a/b.bin", data=body) as resp:
            assert resp.status == 201
            assert await resp.json() == {"etag": hashlib.md5(body).hexdigest(), "size": size}
        assert len(replicas(dirs, "a/b.bin")) >= 2  # answered at W
        assert await settled(dirs, "a/b.bin", 3) == [body] * 3
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


async def test_a_streamed_put_goes_on_when_a_replica_is_down(floor: Floor) -> None:
    await floor.nodes[0].close()
    body = os.urandom(5 * 1024 * 1024)
    async with (
        aiohttp.ClientSession() as session,
        session.put(f"{floor.url}/o/k", data=body) as resp,
    ):
        assert resp.status == 201
        assert (await resp.json())["etag"] == hashlib.md5(body).hexdigest()
    assert await settled(floor.dirs, "k", 2) == [body] * 2
    assert replicas(floor.dirs[:1], "k") == []


async def test_a_replica_that_breaks_off_part_way_does_not_stop_the_others(tmp_path: Path) -> None:
    async def breaks_off(request: web.Request) -> web.Response:
        await request.content.readexactly(CHUNK)
        raise RuntimeError("this replica fails after its first chunk")

    broken = web.Application()
    broken.router.add_put("/o/{key:.+}", breaks_off)
    dirs = [tmp_path / "n0", tmp_path / "n1"]
    nodes = [TestServer(broken), *(TestServer(node_app(data)) for data in dirs)]
    for server in nodes:
        await server.start_server()
    gateway = TestServer(gateway_app([str(server.make_url("")).rstrip("/") for server in nodes]))
    await gateway.start_server()
    body = os.urandom(6 * CHUNK + 3)
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.put(f"{str(gateway.make_url('')).rstrip('/')}/o/k", data=body) as resp,
        ):
            assert resp.status == 201
            assert (await resp.json())["etag"] == hashlib.md5(body).hexdigest()
        assert await settled(dirs, "k", 2) == [body] * 2
        assert all(not list((d / "tmp").iterdir()) for d in dirs)
    finally:
        for server in [gateway, *nodes]:
            await server.close()
