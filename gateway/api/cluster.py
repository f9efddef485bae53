"""Cluster resource: nodes as the health probe sees them, and the ring in force."""

from __future__ import annotations

import time

from aiohttp import web

from gateway.keys import HEALTH, MIRROR_OUTBOX, OBJECTS, PRINCIPAL


async def get_cluster(request: web.Request) -> web.Response:
    request[PRINCIPAL].require("admin")
    ring = request.app[OBJECTS].ring
    health = request.app[HEALTH]
    nodes = []
    for node in ring.nodes:
        state = health.state(node.id)
        nodes.append(
            {
                "id": node.id,
                "url": node.url,
                "zone": node.zone,
                "weight": node.weight,
                "up": health.is_up(node.id),
                "disk_free_bytes": state.status.disk_free_bytes if state.status else None,
                "disk_total_bytes": state.status.disk_total_bytes if state.status else None,
                "last_error": state.last_error or None,
            }
        )
    now = time.time()
    mirror = await request.app[MIRROR_OUTBOX].mirror_summary(now, recent=0)
    return web.json_response(
        {
            "nodes": nodes,
            "ring": {
                "epoch": ring.epoch,
                "partitions": 2**ring.partition_power,
                "replicas": ring.replicas,
            },
            "mirror": {
                "queued": mirror.queued,
                "failed": mirror.failed,
                "lag_seconds": round(mirror.lag(now), 3),
            },
        }
    )
