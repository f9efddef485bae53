"""Sweep resource (admin only): sweep one node or all of them now, or show what a sweep would
remove (dry run)."""

from __future__ import annotations

from aiohttp import web

from gateway.api.bodies import json_object
from gateway.errors import InvalidArgument
from gateway.keys import OBJECTS, PRINCIPAL, SWEEPS
from gateway.sweep import totals

_SHAPE = 'a JSON object: {"dry_run": bool, "node": id-or-url-or-null, "force": bool}'


async def run_sweep(request: web.Request) -> web.Response:
    request[PRINCIPAL].require("admin")
    body = await json_object(request, _SHAPE)
    dry_run, force, wanted = body.get("dry_run", False), body.get("force", False), body.get("node")
    if not isinstance(dry_run, bool) or not isinstance(force, bool):
        raise InvalidArgument(f"send {_SHAPE}")
    nodes = list(request.app[OBJECTS].ring.nodes)
    if wanted is not None:
        nodes = [n for n in nodes if wanted in (n.id, n.url, n.url.rstrip("/"))]
        if not nodes:
            raise InvalidArgument(f"no node in the ring has id or URL {wanted!r}")
    sweeps = await request.app[SWEEPS].sweep(nodes, dry_run=dry_run, force=force)
    return web.json_response(
        {**totals(sweeps, dry_run).to_json(), "nodes": [sweep.to_json() for sweep in sweeps]}
    )
