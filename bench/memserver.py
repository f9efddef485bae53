"""A trivial in-memory aiohttp object server: the most a Python aiohttp server can do for the
load client on this machine (no disk, no replication, no hashing). Runs on the default asyncio
loop, as shardgate's processes do. Usage: python -m bench.memserver --port PORT"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable

from aiohttp import web

STORE = web.AppKey("store", dict[str, list[bytes]])
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def put_object(request: web.Request) -> web.Response:
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_any():
        chunks.append(chunk)
        size += len(chunk)
    request.app[STORE][request.match_info["key"]] = chunks
    return web.json_response({"size": size}, status=201)


async def get_object(request: web.Request) -> web.StreamResponse:
    chunks = request.app[STORE].get(request.match_info["key"])
    if chunks is None:
        raise web.HTTPNotFound()
    response = web.StreamResponse()
    response.content_length = sum(len(c) for c in chunks)
    response.content_type = "application/octet-stream"
    await response.prepare(request)
    for chunk in chunks:
        await response.write(chunk)
    await response.write_eof()
    return response


async def delete_object(request: web.Request) -> web.Response:
    request.app[STORE].pop(request.match_info["key"], None)
    return web.Response(status=204)


async def healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok")


def object_routes(put: Handler, get: Handler, delete: Handler) -> list[web.RouteDef]:
    """The object routes the load client uses (`/o/{key}`) and a health check."""
    return [
        web.put("/o/{key:.+}", put),
        web.get("/o/{key:.+}", get),
        web.delete("/o/{key:.+}", delete),
        web.get("/healthz", healthz),
    ]


def create_app() -> web.Application:
    app = web.Application()
    app[STORE] = {}
    app.add_routes(object_routes(put_object, get_object, delete_object))
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    web.run_app(create_app(), host=args.host, port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
