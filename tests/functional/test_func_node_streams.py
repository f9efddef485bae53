"""Functional tests of a storage node's streams: bodies cut short by a client hanging up,
temp files left behind, keep-alive after a sendfile read, a large object read back, and how
little a presigned GET's socket holds unsent."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import socket
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from func_cluster import wait_until
from func_node_kit import BUCKET, KEY, SECRET, Client, get, identity, locate, put, signed

import storage_node
from shardgate.config import NodeConfig
from shardgate.internal_api import partition_path
from shardgate.tokens import Claims, issue
from shardgate.versions import VersionClock
from storage_node import disk, verified
from storage_node.keys import INLINE_READS, STORE


async def _requests_seen(node_client: Client, method: str) -> int:
    text = await (await node_client.get("/metrics")).text()
    prefix = "shardgate_http_requests_total{"
    return sum(
        int(float(line.rsplit(" ", 1)[1]))
        for line in text.splitlines()
        if line.startswith(prefix) and f'method="{method}"' in line and "objects" in line
    )


async def _start_truncated_put(
    node_client: Client, version: str, sent: int = 1000
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Open a raw connection and send a PUT promising 10,000,000 bytes, then only `sent`."""
    path = locate()[2]
    headers = {**signed("PUT", path), **identity(version), "Content-Length": "10000000"}
    head = f"PUT {path} HTTP/1.1\r\nHost: node\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in headers.items()) + "\r\n"
    assert node_client.server.port is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", node_client.server.port)
    writer.write(head.encode() + os.urandom(sent))
    await writer.drain()
    return reader, writer


async def _hang_up(writer: asyncio.StreamWriter, node_client: Client) -> None:
    writer.close()
    await writer.wait_closed()

    async def answered() -> bool:
        return await _requests_seen(node_client, "PUT") == 1

    await wait_until(answered)


def _tmp_files(data_dir: Path) -> list[Path]:
    return list((data_dir / "tmp").iterdir())


ON_DISK = 3 * 1024 * 1024  # past the node's first chunk, which it holds before creating a file


async def test_truncated_body_is_never_visible(
    node_client: Client, clock: VersionClock, tmp_path: Path
) -> None:
    _, writer = await _start_truncated_put(node_client, clock.next())
    await _hang_up(writer, node_client)
    assert (await get(node_client)).status == 404
    partition = locate()[0]
    path = partition_path(partition)
    listing = await (await node_client.get(path, headers=signed("GET", path))).json()
    assert listing["objects"] == []
    assert not list(tmp_path.glob("objects/**/*.data"))


@pytest.mark.parametrize("store_kind", ["disk"], indirect=True)
async def test_body_cut_mid_stream_removes_temp_file(
    node_client: Client, clock: VersionClock, tmp_path: Path
) -> None:
    _, writer = await _start_truncated_put(node_client, clock.next(), ON_DISK)

    async def writing() -> bool:
        return len(_tmp_files(tmp_path)) == 1

    await wait_until(writing)
    await _hang_up(writer, node_client)

    async def tmp_empty() -> bool:
        return not _tmp_files(tmp_path)

    await wait_until(tmp_empty)
    assert (await get(node_client)).status == 404


class HeldExecutor(ThreadPoolExecutor):
    """Runs each job at once but holds back its result until `release` is set."""

    def __init__(self) -> None:
        super().__init__(max_workers=4)
        self.release = threading.Event()

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future[Any]:
        def held() -> Any:
            try:
                return fn(*args, **kwargs)
            finally:
                self.release.wait()

        return super().submit(held)


@pytest.mark.parametrize("store_kind", ["disk"], indirect=True)
async def test_hang_up_while_temp_file_opens_removes_it(
    node_client: Client, clock: VersionClock, tmp_path: Path
) -> None:
    """The test server cancels the handler of a node_client that hangs up; holding the executor
    makes the hang-up land, every time, while the disk thread has created the temp file but not
    yet handed it over; the handler's clean-up must still find and remove it."""
    executor = HeldExecutor()
    node_client.server.app[STORE].pool = executor
    try:
        _, writer = await _start_truncated_put(node_client, clock.next(), ON_DISK)

        async def created() -> bool:
            return len(_tmp_files(tmp_path)) == 1

        await wait_until(created)
        writer.close()
        await writer.wait_closed()
        await asyncio.sleep(0.2)  # the server cancels the handler while its disk job is held
    finally:
        executor.release.set()
    await _hang_up(writer, node_client)

    async def tmp_empty() -> bool:
        return not _tmp_files(tmp_path)

    await wait_until(tmp_empty, timeout=2.0)


@pytest.mark.parametrize("store_kind", ["disk"], indirect=True)
async def test_sendfile_get_keeps_connection_alive(
    node_client: Client, clock: VersionClock
) -> None:
    assert (await put(node_client, b"keep me alive", clock.next())).status == 201
    path = locate()[2]
    assert node_client.server.port is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", node_client.server.port)
    answers = []
    for connection in ("keep-alive", "close"):
        headers = {**signed("GET", path), "Connection": connection}
        request = f"GET {path} HTTP/1.1\r\nHost: node\r\n"
        request += "".join(f"{name}: {value}\r\n" for name, value in headers.items()) + "\r\n"
        writer.write(request.encode())
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        answers.append(await asyncio.wait_for(reader.readuntil(b"keep me alive"), timeout=5))
    writer.close()
    assert [answer.startswith(b"HTTP/1.1 200 OK") for answer in answers] == [True, True]


async def test_large_object_read(node_client: Client, clock: VersionClock) -> None:
    body = os.urandom(8 * 1024 * 1024)
    resp = await put(node_client, body, clock.next())
    assert resp.status == 201
    assert (await resp.json())["etag"] == hashlib.md5(body).hexdigest()
    resp = await get(node_client)
    assert resp.status == 200
    assert resp.headers["Content-Length"] == str(len(body))
    received = await resp.read()
    assert len(received) == len(body)
    assert hashlib.md5(received).digest() == hashlib.md5(body).digest()


@pytest.mark.parametrize("store_kind", ["disk"], indirect=True)
@pytest.mark.parametrize(
    ("size", "budget", "sent_by_sendfile"),
    [
        (1 << 20, 64 << 20, False),
        ((1 << 20) + 1, 64 << 20, True),
        (1 << 20, (2 << 20) - 1, True),  # a body counts twice: itself and the transport's copy
    ],
)
async def test_a_version_of_one_block_is_written_and_others_sent_by_sendfile(
    node_client: Client,
    clock: VersionClock,
    monkeypatch: pytest.MonkeyPatch,
    size: int,
    budget: int,
    sent_by_sendfile: bool,
) -> None:
    """Up to one block (1 MiB) a version is read whole in one hop and written, while the node
    holds less than `inline_read_bytes` of such bodies; anything else goes by sendfile."""
    node_client.server.app[INLINE_READS].limit = budget
    body = os.urandom(size)
    assert (await put(node_client, body, clock.next())).status == 201
    loop = asyncio.get_running_loop()
    sendfiles: list[int] = []
    real = loop.sendfile

    async def counted(transport: Any, file: Any, offset: int = 0, count: int | None = None) -> int:
        sendfiles.append(count or 0)
        return await real(transport, file, offset, count)

    monkeypatch.setattr(loop, "sendfile", counted)
    whole = await get(node_client)
    assert hashlib.sha256(await whole.read()).digest() == hashlib.sha256(body).digest()
    part = await get(node_client, Range="bytes=1000-")
    assert (part.status, await part.read()) == (206, body[1000:])
    assert bool(sendfiles) is sent_by_sendfile
    assert node_client.server.app[INLINE_READS].held == 0


@pytest.mark.skipif(not hasattr(socket, "TCP_NOTSENT_LOWAT"), reason="no TCP_NOTSENT_LOWAT")
async def test_a_presigned_get_sent_by_sendfile_waits_little_unsent(
    aiohttp_client: Any, tmp_path: Path, clock: VersionClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each window of a presigned GET goes down a socket that reports itself writable only
    while less than `notsent_lowat_bytes` wait unsent, so sendfile tops it up as the client
    takes bytes; the gateway's reads keep the kernel's default."""
    config = NodeConfig(
        node_id="node-a", data_dir=tmp_path, cluster_secret=SECRET, token_keys={"k1": SECRET}
    )
    client = await aiohttp_client(storage_node.create_app(config))
    body = os.urandom(6 << 20)  # two windows: 4 MiB, then 2
    assert (await put(client, body, clock.next())).status == 201
    loop = asyncio.get_running_loop()
    lowats: list[int] = []
    real = loop.sendfile

    async def spied(transport: Any, file: Any, offset: int = 0, count: int | None = None) -> int:
        sock = transport.get_extra_info("socket")
        lowats.append(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NOTSENT_LOWAT))
        return await real(transport, file, offset, count)

    monkeypatch.setattr(loop, "sendfile", spied)
    claims = Claims("k1", "node-a", BUCKET, KEY, "GET", "", int(time.time()) + 60, locate()[0])
    url = f"/direct/v1/{BUCKET}/{quote(KEY, safe='/')}"
    direct = await client.get(url, params={"token": issue(claims, SECRET)})
    assert hashlib.sha256(await direct.read()).digest() == hashlib.sha256(body).digest()
    internal = await get(client)  # on the same kept-alive connection
    assert hashlib.sha256(await internal.read()).digest() == hashlib.sha256(body).digest()
    assert lowats == [config.notsent_lowat_bytes] * 2 + [0, 0]
    assert config.notsent_lowat_bytes == 128 << 10


@pytest.mark.parametrize("store_kind", ["disk"])
@pytest.mark.parametrize("size", [4096, 1 << 20])
async def test_a_get_of_one_block_takes_one_disk_hop(
    node_client: Client, clock: VersionClock, monkeypatch: pytest.MonkeyPatch, size: int
) -> None:
    """The lookup reads a version of one block with its metadata: one hop, not two."""
    body = os.urandom(size)
    assert (await put(node_client, body, clock.next())).status == 201
    pool = node_client.server.app[STORE].pool
    hops: list[str] = []
    real = pool.submit

    def counted(fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        hops.append(getattr(fn, "__name__", repr(fn)))
        return real(fn, *args, **kwargs)

    monkeypatch.setattr(pool, "submit", counted)
    resp = await get(node_client)
    assert resp.status == 200
    assert await resp.read() == body
    assert len(hops) == 1, hops


@pytest.mark.parametrize("store_kind", ["disk"])
@pytest.mark.parametrize(
    ("method", "headers", "reads"),
    [("GET", {}, 1), ("HEAD", {}, 0), ("GET", {"If-None-Match": '"0"'}, 1)],
)
async def test_only_a_get_that_sends_bytes_reads_them_with_the_lookup(
    node_client: Client,
    clock: VersionClock,
    monkeypatch: pytest.MonkeyPatch,
    method: str,
    headers: dict[str, str],
    reads: int,
) -> None:
    """A HEAD, or a GET that may be a 304, does not read a body it may not send; a GET that
    may be a 304 and is not reads it after the lookup instead."""
    assert (await put(node_client, b"x" * 5000, clock.next())).status == 201
    calls: list[int] = []
    real = disk.read_checked

    def counted(fd: int, meta: Any) -> bytes:
        calls.append(meta.size)
        return real(fd, meta)

    monkeypatch.setattr(disk, "read_checked", counted)
    monkeypatch.setattr(verified, "read_checked", counted)
    path = locate()[2]
    resp = await node_client.request(method, path, headers={**signed(method, path), **headers})
    assert resp.status == 200
    assert calls == [5000] * reads
