"""Partition resource: what one partition holds on this node, for repair and audits."""

from __future__ import annotations

from aiohttp import web

from storage_node.keys import STORE


async def list_partition(request: web.Request) -> web.Response:
    partition = int(request.match_info["partition"])
    entries = await request.app[STORE].list_partition(partition)
    objects = [{"hash": obj_hash, **meta.listing_entry()} for obj_hash, meta in entries]
    return web.json_response({"partition": partition, "objects": objects})
