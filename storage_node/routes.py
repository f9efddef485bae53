"""The node's routes, as one table."""

from __future__ import annotations

from aiohttp import web

from shardgate.internal_api import PREFIX, SWEEP_PATH
from shardgate.web import metrics_handler
from storage_node import direct, health, objects, partitions, pending, push, sweep

_OBJECT = PREFIX + "/objects/{partition:\\d+}/{hash:[0-9a-f]{32}}"
_PENDING = PREFIX + "/pending/{upload_id:[0-9a-f]{24}}"
_DIRECT = "/direct/v1/{bucket}/{key:.+}"

ROUTES = [
    web.put(_OBJECT, objects.put_object),
    web.get(_OBJECT, objects.get_object),  # aiohttp adds HEAD for GET routes
    web.delete(_OBJECT, objects.delete_object),
    web.delete(_OBJECT + "/versions/{version:\\d{20}}", objects.discard_version),
    web.post(_OBJECT + "/push", push.push_object),
    web.get(PREFIX + "/partitions/{partition:\\d+}", partitions.list_partition),
    web.post(PREFIX + "/digests", partitions.partition_digests),
    web.put(_PENDING, pending.receive_copy),
    web.get(_PENDING, pending.get_pending),
    web.post(_PENDING + "/copy", pending.copy_pending),
    web.post(_PENDING + "/publish", pending.publish_pending),
    web.delete(_PENDING, pending.drop_pending),
    web.post(SWEEP_PATH, sweep.run_sweep),
    web.get(SWEEP_PATH + "/candidates", sweep.list_candidates),
    web.post(SWEEP_PATH + "/discard", sweep.discard_replicas),
    web.post(PREFIX + "/scrub", sweep.run_scrub),
    web.put(_DIRECT, direct.put_direct),
    web.post(_DIRECT, direct.post_direct),
    web.get(_DIRECT, direct.get_direct),
    web.options(_DIRECT, direct.preflight_direct),
    web.get("/healthz", health.healthz),
    web.get("/metrics", metrics_handler),
]
