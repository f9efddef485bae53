"""The node's routes, as one table."""

from __future__ import annotations

from aiohttp import web

from shardgate.internal_api import PREFIX
from shardgate.web import metrics_handler
from storage_node import health, objects, partitions

_OBJECT = PREFIX + "/objects/{partition:\\d+}/{hash:[0-9a-f]{32}}"

ROUTES = [
    web.put(_OBJECT, objects.put_object),
    web.get(_OBJECT, objects.get_object),  # aiohttp adds HEAD for GET routes
    web.delete(_OBJECT, objects.delete_object),
    web.delete(_OBJECT + "/versions/{version:\\d{20}}", objects.discard_version),
    web.get(PREFIX + "/partitions/{partition:\\d+}", partitions.list_partition),
    web.get("/healthz", health.healthz),
    web.get("/metrics", metrics_handler),
]
