"""The floor of shardgate's shape in Python: a gateway that md5s each body and sends it to three
nodes over the gateway's own lean client, answering at the second acknowledgement, and nodes
that write each object to one flat file with one fsync of the file and one of its directory.
No auth, catalog, checksums, metadata, validation, limits or metrics: what any Python design of
this shape pays at least, to read shardgate's small-object figures against. Bodies are read
whole (small and medium workloads only). Runs on the default asyncio loop, as shardgate does.

Usage: python -m bench.floor_servers node --data DIR --port PORT
       python -m bench.floor_servers gateway --nodes URL,URL,URL --port PORT
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from aiohttp import web

from bench.memserver import object_routes
from gateway.http_wire import Broken
from gateway.node_http import NodeConnections, Unreachable

W = 2  # acknowledgements before the gateway answers, as shardgate's default
DATA = web.AppKey("data", Path)
POOL = web.AppKey("pool", ThreadPoolExecutor)
NODES = web.AppKey("nodes", list[str])
CONNECTIONS = web.AppKey("connections", NodeConnections)
LATE = web.AppKey("late", set[asyncio.Task[int]])


def _name(request: web.Request) -> str:
    return hashlib.sha256(request.match_info["key"].encode()).hexdigest()


def _write_sync(data: Path, name: str, body: bytes) -> None:
    tmp = data / "tmp" / uuid.uuid4().hex
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, body)
        os.fsync(fd)
        os.rename(tmp, data / "objects" / name)
    finally:
        os.close(fd)
        tmp.unlink(missing_ok=True)
    _fsync_dir(data / "objects")


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _delete_sync(data: Path, name: str) -> None:
    (data / "objects" / name).unlink(missing_ok=True)
    _fsync_dir(data / "objects")


async def node_put(request: web.Request) -> web.Response:
    body = await request.read()
    app, loop = request.app, asyncio.get_running_loop()
    await loop.run_in_executor(app[POOL], _write_sync, app[DATA], _name(request), body)
    return web.json_response({"size": len(body)}, status=201)


async def node_get(request: web.Request) -> web.Response:
    path = request.app[DATA] / "objects" / _name(request)
    loop = asyncio.get_running_loop()
    try:
        body = await loop.run_in_executor(request.app[POOL], path.read_bytes)
    except FileNotFoundError:
        raise web.HTTPNotFound() from None
    return web.Response(body=body, content_type="application/octet-stream")


async def node_delete(request: web.Request) -> web.Response:
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(request.app[POOL], _delete_sync, request.app[DATA], _name(request))
    return web.Response(status=204)


async def _send(request: web.Request, node: str, method: str, body: bytes = b"") -> int:
    """The node's status; 599 if the exchange broke (a failed replica, as the gateway counts)."""
    try:
        response = await request.app[CONNECTIONS].request(
            node, method, request.path, {}, body, stall=30.0
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
    tasks = [asyncio.create_task(_send(request, node, method, body)) for node in request.app[NODES]]
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


async def gateway_put(request: web.Request) -> web.Response:
    body = await request.read()
    etag = hashlib.md5(body, usedforsecurity=False).hexdigest()
    if await _at_w(request, "PUT", body) < W:
        raise web.HTTPServiceUnavailable()
    return web.json_response({"etag": etag, "size": len(body)}, status=201)


async def gateway_get(request: web.Request) -> web.Response:
    nodes = request.app[NODES]
    node = nodes[int(_name(request)[:8], 16) % len(nodes)]
    response = await request.app[CONNECTIONS].request(node, "GET", request.path, {}, stall=30.0)
    try:
        body = await response.read()
    finally:
        response.release()
    if response.status != 200:
        raise web.HTTPNotFound()
    return web.Response(body=body, content_type="application/octet-stream")


async def gateway_delete(request: web.Request) -> web.Response:
    await _at_w(request, "DELETE")
    return web.Response(status=204)


def node_app(data: Path) -> web.Application:
    for sub in ("tmp", "objects"):
        (data / sub).mkdir(parents=True, exist_ok=True)
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app[DATA] = data
    app[POOL] = ThreadPoolExecutor(32)  # as a shardgate node's disk threads
    app.add_routes(object_routes(node_put, node_get, node_delete))
    return app


def gateway_app(nodes: list[str]) -> web.Application:
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app[NODES] = nodes
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
