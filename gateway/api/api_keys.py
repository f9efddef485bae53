"""API key resource (admin only): create (the secret is shown once), list, revoke."""

from __future__ import annotations

from aiohttp import web

from gateway.api.bodies import json_object
from gateway.errors import InvalidArgument
from gateway.keys import API_KEYS, PRINCIPAL
from gateway.names import check_bucket


async def create_key(request: web.Request) -> web.Response:
    request[PRINCIPAL].require("admin")
    body = await json_object(request, "a JSON object: {name, rights, buckets}")
    name, rights, buckets = body.get("name", ""), body.get("rights"), body.get("buckets")
    if not isinstance(name, str) or not 1 <= len(name) <= 200:
        raise InvalidArgument("name must be a string of 1 to 200 characters")
    if not isinstance(rights, list) or not all(isinstance(r, str) for r in rights):
        raise InvalidArgument("rights must be a list such as ['read', 'write']")
    if buckets is not None:
        if not isinstance(buckets, list) or not all(isinstance(b, str) for b in buckets):
            raise InvalidArgument("buckets must be a list of bucket names, or null for all")
        buckets = [check_bucket(b) for b in buckets]
    record, secret = await request.app[API_KEYS].create(name, rights, buckets)
    return web.json_response({**record.to_json(), "key": secret}, status=201)


async def list_keys(request: web.Request) -> web.Response:
    request[PRINCIPAL].require("admin")
    keys = await request.app[API_KEYS].list()
    return web.json_response({"keys": [record.to_json() for record in keys]})


async def revoke_key(request: web.Request) -> web.Response:
    request[PRINCIPAL].require("admin")
    await request.app[API_KEYS].revoke(request.match_info["id"])
    return web.Response(status=204)
