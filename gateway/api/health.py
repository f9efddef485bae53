"""Liveness (the process answers) and readiness (catalog open and a write quorum of nodes up)."""

from __future__ import annotations

from aiohttp import web

from gateway.errors import ServiceUnavailable
from gateway.keys import CATALOG, CONFIG, HEALTH, OBJECTS


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    await request.app[CATALOG].ping()
    up = request.app[HEALTH].up_count(request.app[OBJECTS].ring.nodes)
    need = request.app[CONFIG].write_quorum
    if up < need:
        raise ServiceUnavailable(f"{up} nodes up; writes need {need}", retry_after=5)
    return web.json_response({"status": "ready", "nodes_up": up})
