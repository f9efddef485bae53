"""Liveness with the disk numbers the gateway's cluster view and the disk gauges need."""

from __future__ import annotations

from aiohttp import web

from storage_node.keys import CONFIG, METRICS, STORE


async def healthz(request: web.Request) -> web.Response:
    usage = await request.app[STORE].usage()
    metrics = request.app[METRICS]
    metrics.disk_free.set(usage.free_bytes)
    metrics.disk_total.set(usage.total_bytes)
    return web.json_response(
        {
            "status": "ok",
            "node": request.app[CONFIG].node_id,
            "disk_free_bytes": usage.free_bytes,
            "disk_total_bytes": usage.total_bytes,
        }
    )
