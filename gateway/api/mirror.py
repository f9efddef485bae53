"""Mirror resource (admin): the outbox's depth, lag and recent failures; requeue parked jobs."""

from __future__ import annotations

import time

from aiohttp import web

from gateway.api.bodies import json_object
from gateway.errors import InvalidArgument
from gateway.keys import CONFIG, MIRROR_OUTBOX, PRINCIPAL

RECENT_FAILURES = 10


async def get_mirror(request: web.Request) -> web.Response:
    request[PRINCIPAL].require("admin")
    config = request.app[CONFIG]
    now = time.time()
    summary = await request.app[MIRROR_OUTBOX].mirror_summary(now, RECENT_FAILURES)
    return web.json_response(
        {
            **summary.to_json(now),
            "target": {
                "endpoint": config.mirror_endpoint or None,
                "bucket": config.mirror_bucket or None,
                "prefix": config.mirror_prefix,
            },
            "workers": config.mirror_workers
            if config.mirror_in_gateway and config.mirror_bucket
            else 0,
        }
    )


async def retry_failed(request: web.Request) -> web.Response:
    """Body `{"job": id}` for one parked job, or `{"all": true}` for every one."""
    request[PRINCIPAL].require("admin")
    body = await json_object(request, '{"job": <id>} or {"all": true}')
    job = body.get("job")
    everything = body.get("all") is True
    if everything == (job is not None) or not (job is None or type(job) is int):
        raise InvalidArgument('send {"job": <id>} or {"all": true}')
    if job is not None and not 0 <= job < 2**63:  # SQLite's integer range
        raise InvalidArgument("job must be the id of a job, as `mirror status` shows it")
    count = await request.app[MIRROR_OUTBOX].requeue_mirror_jobs(job, time.time())
    return web.json_response({"requeued": count})
