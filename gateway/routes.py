"""The gateway's routes, as one table."""

from __future__ import annotations

from aiohttp import web

from gateway.api import buckets, cluster, health, objects
from shardgate.web import metrics_handler

_OBJECT = "/v1/objects/{bucket}/{key:.+}"

ROUTES = [
    web.put("/v1/buckets/{bucket}", buckets.put_bucket),
    web.get("/v1/buckets/{bucket}", buckets.get_bucket),
    web.put(_OBJECT, objects.put_object),
    web.get(_OBJECT, objects.get_object),  # aiohttp adds HEAD for GET routes
    web.delete(_OBJECT, objects.delete_object),
    web.get("/v1/cluster", cluster.get_cluster),
    web.get("/healthz", health.healthz),
    web.get("/readyz", health.readyz),
    web.get("/metrics", metrics_handler),
]
