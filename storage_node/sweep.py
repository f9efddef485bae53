"""Maintenance resources (signed, for the gateway, `shardgate sweep` and tests): run the local
sweep, list replicas old enough to be checked against the catalog, discard the ones it does not
want, and run a scrub pass now."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from aiohttp import web

from storage_node.errors import BadRequest
from storage_node.keys import SCRUBBER, SWEEPER
from storage_node.sweeper import Replica, Sweeper

MAX_CANDIDATES = 5000


def _sweeper(request: web.Request) -> Sweeper:
    sweeper = request.app.get(SWEEPER)
    if sweeper is None:
        raise BadRequest("this node's store keeps no files to sweep")
    return sweeper


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise BadRequest("send a JSON object") from None
    if not isinstance(body, dict) or not isinstance(body.get("dry_run", False), bool):
        raise BadRequest('send {"dry_run": true|false, ...}')
    return body


async def run_sweep(request: web.Request) -> web.Response:
    body = await _body(request)
    report = await _sweeper(request).sweep(dry_run=body.get("dry_run", False))
    return web.json_response(report.to_json())


async def list_candidates(request: web.Request) -> web.Response:
    try:
        after = int(request.query.get("after", "-1"))
        limit = min(int(request.query.get("limit", "1000")), MAX_CANDIDATES)
    except ValueError:
        raise BadRequest("after and limit are integers") from None
    found, next_after = await _sweeper(request).candidates(after, max(limit, 1))
    return web.json_response({"replicas": [r.to_json() for r in found], "next": next_after})


async def discard_replicas(request: web.Request) -> web.Response:
    body = await _body(request)
    try:
        replicas = [Replica.from_json(item) for item in body.get("replicas", [])]
    except (KeyError, TypeError, ValueError):
        raise BadRequest("replicas need partition, hash, bucket, key and version") from None
    report = await _sweeper(request).discard(replicas, dry_run=body.get("dry_run", False))
    return web.json_response(report.to_json())


async def run_scrub(request: web.Request) -> web.Response:
    """One scrub pass now (the periodic one's `--once`): what it checked and found."""
    scrubber = request.app.get(SCRUBBER)
    if scrubber is None:
        raise BadRequest("this node's store keeps no files to scrub")
    report = await scrubber.scrub_once()
    return web.json_response(asdict(report))
