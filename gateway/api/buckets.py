"""Bucket resource: create or update a bucket and its policy, list, show and delete (empty only)."""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from gateway.api.bodies import json_object
from gateway.catalog import BucketRecord
from gateway.errors import BucketNotEmpty, InvalidArgument, NoSuchBucket
from gateway.keys import CATALOG, OBJECTS, PRINCIPAL
from gateway.names import check_bucket

_POLICY_TYPES: dict[str, type | tuple[type, ...]] = {
    "max_object_size": (int, type(None)),
    "allowed_types": list,
    "public_read": bool,
    "cors_origins": list,
    "mirror": bool,
}


async def _policy(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    body = await json_object(request, "the bucket policy as a JSON object")
    for name, value in body.items():
        expected = _POLICY_TYPES.get(name)
        if expected is None:
            raise InvalidArgument(
                f"unknown bucket setting {name!r}; known: {sorted(_POLICY_TYPES)}"
            )
        wrong = not isinstance(value, expected) or (
            isinstance(value, bool) and expected == (int, type(None))
        )
        if isinstance(value, list):
            wrong = wrong or not all(
                isinstance(item, str) and 0 < len(item) <= 256 for item in value
            )
        if isinstance(value, int) and not isinstance(value, bool):
            wrong = wrong or value < 0
        if wrong:
            raise InvalidArgument(f"bucket setting {name!r} has the wrong type or value")
    return body


async def put_bucket(request: web.Request) -> web.Response:
    name = check_bucket(request.match_info["bucket"])
    request[PRINCIPAL].require("admin", name)
    policy = await _policy(request)
    catalog = request.app[CATALOG]
    existing = await catalog.get_bucket(name)
    record = BucketRecord(
        name=name,
        created=existing.created if existing else time.time(),
        max_object_size=policy.get(
            "max_object_size", existing.max_object_size if existing else None
        ),
        allowed_types=tuple(
            policy.get("allowed_types", existing.allowed_types if existing else ())
        ),
        public_read=policy.get("public_read", existing.public_read if existing else False),
        cors_origins=tuple(policy.get("cors_origins", existing.cors_origins if existing else ())),
        mirror=policy.get("mirror", existing.mirror if existing else False),
    )
    stored = await catalog.put_bucket(record)
    request.app[OBJECTS].forget_bucket(name)
    return web.json_response(stored.to_json(), status=200 if existing else 201)


async def get_bucket(request: web.Request) -> web.Response:
    name = check_bucket(request.match_info["bucket"])
    principal = request[PRINCIPAL]
    if not any(principal.may(right, name) for right in ("read", "write")):
        principal.require("read", name)
    record = await request.app[OBJECTS].bucket(name)
    return web.json_response(record.to_json())


async def list_buckets(request: web.Request) -> web.Response:
    principal = request[PRINCIPAL]
    if principal.anonymous:
        principal.require("read")
    buckets = await request.app[CATALOG].list_buckets()
    visible = [
        b.to_json() for b in buckets if principal.buckets is None or b.name in principal.buckets
    ]
    return web.json_response({"buckets": visible})


async def delete_bucket(request: web.Request) -> web.Response:
    name = check_bucket(request.match_info["bucket"])
    request[PRINCIPAL].require("admin", name)
    outcome = await request.app[CATALOG].delete_bucket(name)
    request.app[OBJECTS].forget_bucket(name)
    if outcome == "missing":
        raise NoSuchBucket(f"bucket {name!r} does not exist")
    if outcome == "not_empty":
        raise BucketNotEmpty(f"bucket {name!r} still holds objects; delete them first")
    return web.Response(status=204)
