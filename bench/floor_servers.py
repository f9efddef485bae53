"""The floor of shardgate's shape in Python: a gateway that md5s each body and sends it to three
nodes over the gateway's own lean client, answering at the second acknowledgement, and nodes
that write each object to one flat file with one fsync of the file and one of its directory.
No auth, catalog, checksums, metadata, validation, limits or metrics: what any Python design of
this shape pays at least, to read shardgate's figures against. Bodies of up to one chunk (1 MiB)
are read whole and written in one disk-thread hop; longer ones stream in 1 MiB chunks, the
gateway hashing on a thread of its own while it relays, the nodes starting writeback every 8 MiB
with a flush behind it (as shardgate's nodes do) and serving them back by sendfile. Runs on the
default asyncio loop, as shardgate does.

Usage: python -m bench.floor_servers node --data DIR --port PORT
       python -m bench.floor_servers gateway --nodes URL,URL,URL --port PORT
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from aiohttp import web

from bench.memserver import object_routes
from gateway.http_wire import Broken
from gateway.node_http import NodeConnections, Unreachable
from shardgate.streams import sized_chunks
from storage_node.disk import FLUSH_THREADS
from storage_node.disk_io import flush_behind, run_to_end, start_writeback

W = 2  # acknowledgements before the gateway answers, as shardgate's default
CHUNK = 1024 * 1024  # a shardgate node's chunk_size: longer bodies stream
WRITEBACK = 8 * CHUNK  # as shardgate's nodes: writeback started, and a flush asked for, this often
RELAY = 256 * 1024  # a streamed GET's pieces, as shardgate's gateway relays them
STALL = 30.0  # a peer or client that sends nothing this long is cut off
DATA = web.AppKey("data", Path)
POOL = web.AppKey("pool", ThreadPoolExecutor)
FLUSHES = web.AppKey("flushes", ThreadPoolExecutor)
HASHER = web.AppKey("hasher", ThreadPoolExecutor)
NODES = web.AppKey("nodes", list[str])
CONNECTIONS = web.AppKey("connections", NodeConnections)
LATE = web.AppKey("late", set[asyncio.Task[int]])


def _name(request: web.Request) -> str:
    return hashlib.sha256(request.match_info["key"].encode()).hexdigest()


class _Replica:
    """One replica being written to tmp/: put in place by fsync, rename and a directory fsync."""

    def __init__(self, data: Path, flushes: ThreadPoolExecutor) -> None:
        self.data, self.flushes = data, flushes
        self.tmp = data / "tmp" / uuid.uuid4().hex
        self.fd = os.open(self.tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        self.size = self.started = 0
        self.flushing: Future[None] | None = None

    def append(self, chunk: bytes) -> None:
        view = memoryview(chunk)
        while view:
            view = view[os.write(self.fd, view) :]
        self.size += len(chunk)
        if self.size - self.started >= WRITEBACK:
            start_writeback(self.fd, self.started, self.size - self.started)
            self.started = self.size
            if self.flushing is None or self.flushing.done():
                self.flushing = self.flushes.submit(flush_behind, self.tmp)

    def finish(self, name: str) -> None:
        try:
            os.fsync(self.fd)
            os.rename(self.tmp, self.data / "objects" / name)
        finally:
            self.close()
        _fsync_dir(self.data / "objects")

    def close(self) -> None:
        os.close(self.fd)
        self.tmp.unlink(missing_ok=True)


def _write_sync(data: Path, flushes: ThreadPoolExecutor, name: str, body: bytes) -> None:
    replica = _Replica(data, flushes)
    try:
        replica.append(body)
    except BaseException:
        replica.close()
        raise
    replica.finish(name)


def _read_small(path: Path) -> bytes | None:
    """The file's bytes if it is at most one chunk; None for a longer one, sent by sendfile."""
    with path.open("rb") as fh:
        return fh.read() if os.fstat(fh.fileno()).st_size <= CHUNK else None


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _delete_sync(data: Path, name: str) -> None:
    (data / "objects" / name).unlink(missing_ok=True)
    _fsync_dir(data / "objects")


def _whole(request: web.Request) -> bool:
    """A body short enough to read whole: its declared length is at most one chunk."""
    return request.content_length is not None and request.content_length <= CHUNK


async def node_put(request: web.Request) -> web.Response:
    app = request.app
    pool = app[POOL]
    if _whole(request):
        body = await request.read()
        await run_to_end(pool.submit(_write_sync, app[DATA], app[FLUSHES], _name(request), body))
        return web.json_response({"size": len(body)}, status=201)
    # Each step runs to its end even if the request is cancelled, so the file is never closed
    # under a write still on a thread.
    replica = await run_to_end(pool.submit(_Replica, app[DATA], app[FLUSHES]))
    try:
        async for chunk in sized_chunks(request.content, CHUNK, STALL):
            await run_to_end(pool.submit(replica.append, chunk))
    except BaseException:
        await run_to_end(pool.submit(replica.close))
        raise
    await run_to_end(pool.submit(replica.finish, _name(request)))
    return web.json_response({"size": replica.size}, status=201)


async def node_get(request: web.Request) -> web.StreamResponse:
    path = request.app[DATA] / "objects" / _name(request)
    loop = asyncio.get_running_loop()
    try:
        body = await loop.run_in_executor(request.app[POOL], _read_small, path)
    except FileNotFoundError:
        raise web.HTTPNotFound() from None
    if body is None:
        return web.FileResponse(path, headers={"Content-Type": "application/octet-stream"})
    return web.Response(body=body, content_type="application/octet-stream")


async def node_delete(request: web.Request) -> web.Response:
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(request.app[POOL], _delete_sync, request.app[DATA], _name(request))
    return web.Response(status=204)


async def _send(
    request: web.Request,
    node: str,
    method: str,
    body: bytes | AsyncIterable[bytes] = b"",
    headers: dict[str, str] | None = None,
) -> int:
    """The node's status; 599 if the exchange broke (a failed replica, as the gateway counts)."""
    try:
        response = await request.app[CONNECTIONS].request(
            node, method, request.path, headers or {}, body, stall=STALL
        )
        try:
            await response.read()
        finally:
            response.release()
    except (Broken, Unreachable, OSError, TimeoutError, ValueError):
        return 599
    return response.status


async def _at_w(request: web.Request, method: str, body: bytes = b"") -> int:
    """Send to every node; return at the W-th success, the rest finishing behind."""
    tasks = [asyncio.create_task(_send(request, n, method, body)) for n in request.app[NODES]]
    return await _acks(request, tasks)


async def _acks(request: web.Request, tasks: list[asyncio.Task[int]]) -> int:
    """Wait for the W-th success among the replicas' exchanges; the rest finish behind."""
    acks = 0
    for done in asyncio.as_completed(tasks):
        if await done < 300:
            acks += 1
        if acks == W:
            break
    late = request.app[LATE]
    for task in tasks:
        if not task.done():
            late.add(task)
            task.add_done_callback(late.discard)
    return acks


async def _feed(request: web.Request, node: str, queue: asyncio.Queue[bytes | None]) -> int:
    """One replica's streamed PUT from its queue; a replica that fails part-way still takes (and
    drops) the rest, so the others go on."""
    ended = False

    async def body() -> AsyncIterator[bytes]:
        nonlocal ended
        while (chunk := await queue.get()) is not None:
            yield chunk
        ended = True

    length = request.content_length
    headers = {} if length is None else {"Content-Length": str(length)}
    try:
        return await _send(request, node, "PUT", body(), headers)
    finally:
        current = asyncio.current_task()
        while not (ended or (current is not None and current.cancelling())):
            ended = await queue.get() is None


async def _stream_put(request: web.Request) -> tuple[str, int, int]:
    """Relay a long body to every replica chunk by chunk, hashing each on the hasher's thread
    while the previous one goes out; the md5, the size and the acknowledgements."""
    loop, nodes = asyncio.get_running_loop(), request.app[NODES]
    queues: list[asyncio.Queue[bytes | None]] = [asyncio.Queue(2) for _ in nodes]
    tasks = [
        asyncio.create_task(_feed(request, node, queue))
        for node, queue in zip(nodes, queues, strict=True)
    ]
    md5, size = hashlib.md5(usedforsecurity=False), 0
    hashed: asyncio.Future[None] = loop.create_future()
    hashed.set_result(None)
    try:
        async for chunk in sized_chunks(request.content, CHUNK, STALL):
            await hashed
            hashed = loop.run_in_executor(request.app[HASHER], md5.update, chunk)
            size += len(chunk)
            for queue in queues:
                await queue.put(chunk)
        await hashed
    except BaseException:
        # The client's body broke off: the replicas' requests go too, so each node drops its
        # temp file rather than wait for bytes that will never come.
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
    for queue in queues:
        await queue.put(None)
    return md5.hexdigest(), size, await _acks(request, tasks)


async def gateway_put(request: web.Request) -> web.Response:
    if _whole(request):
        body = await request.read()
        etag, size = hashlib.md5(body, usedforsecurity=False).hexdigest(), len(body)
        acks = await _at_w(request, "PUT", body)
    else:
        etag, size, acks = await _stream_put(request)
    if acks < W:
        raise web.HTTPServiceUnavailable()
    return web.json_response({"etag": etag, "size": size}, status=201)


async def gateway_get(request: web.Request) -> web.StreamResponse:
    nodes = request.app[NODES]
    node = nodes[int(_name(request)[:8], 16) % len(nodes)]
    response = await request.app[CONNECTIONS].request(node, "GET", request.path, {}, stall=STALL)
    try:
        if response.status != 200:
            raise web.HTTPNotFound()
        length = int(response.headers["Content-Length"])
        if length <= CHUNK:
            body = await response.read()
            return web.Response(body=body, content_type="application/octet-stream")
        relay = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        relay.content_length = length
        await relay.prepare(request)
        async for piece in response.chunks(RELAY):
            await relay.write(piece)
        await relay.write_eof()
        return relay
    finally:
        response.release()


async def gateway_delete(request: web.Request) -> web.Response:
    await _at_w(request, "DELETE")
    return web.Response(status=204)


def node_app(data: Path) -> web.Application:
    for sub in ("tmp", "objects"):
        (data / sub).mkdir(parents=True, exist_ok=True)
    app = web.Application(client_max_size=CHUNK)
    app[DATA] = data
    app[POOL] = ThreadPoolExecutor(32)  # as a shardgate node's disk threads
    app[FLUSHES] = ThreadPoolExecutor(FLUSH_THREADS)
    app.on_cleanup.append(_shut_down(POOL, FLUSHES))
    app.add_routes(object_routes(node_put, node_get, node_delete))
    return app


def _shut_down(
    *pools: web.AppKey[ThreadPoolExecutor],
) -> Callable[[web.Application], Awaitable[None]]:
    """A cleanup that stops the app's thread pools once their jobs end."""

    async def shut_down(app: web.Application) -> None:
        for pool in pools:
            app[pool].shutdown(wait=True)

    return shut_down


def gateway_app(nodes: list[str]) -> web.Application:
    app = web.Application(client_max_size=CHUNK)
    app[NODES] = nodes
    app[HASHER] = ThreadPoolExecutor(1, thread_name_prefix="md5")
    app.on_cleanup.append(_shut_down(HASHER))
    app[LATE] = set()

    async def connections(app: web.Application) -> AsyncIterator[None]:
        app[CONNECTIONS] = NodeConnections(connect_timeout=5.0, on_open=lambda: None)
        yield
        app[CONNECTIONS].close()

    app.cleanup_ctx.append(connections)
    app.add_routes(object_routes(gateway_put, gateway_get, gateway_delete))
    return app


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.floor_servers", description=__doc__)
    parser.add_argument("role", choices=("node", "gateway"))
    parser.add_argument("--data", type=Path, help="a node's directory")
    parser.add_argument("--nodes", help="the gateway's nodes: comma-separated base URLs")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    app = node_app(args.data) if args.role == "node" else gateway_app(args.nodes.split(","))
    web.run_app(app, host=args.host, port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
