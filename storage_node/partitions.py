"""Partition resource: what one partition holds on this node, and digests of many at once, for
the replicator and audits."""

from __future__ import annotations

import asyncio

from aiohttp import web

from storage_node.disk import DiskStore
from storage_node.errors import BadRequest
from storage_node.keys import STORE
from storage_node.replicator import partition_digest

MAX_DIGESTS = 5000


async def list_partition(request: web.Request) -> web.Response:
    partition = int(request.match_info["partition"])
    entries = await request.app[STORE].list_partition(partition)
    objects = [{"hash": obj_hash, **meta.listing_entry()} for obj_hash, meta in entries]
    return web.json_response({"partition": partition, "objects": objects})


async def partition_digests(request: web.Request) -> web.Response:
    """Digests of the partitions named in `{"partitions": [...]}`; an empty one's too."""
    try:
        body = await request.json()
        partitions = [int(p) for p in body["partitions"]]
    except (ValueError, KeyError, TypeError):
        raise BadRequest('send {"partitions": [numbers]}') from None
    if len(partitions) > MAX_DIGESTS:
        raise BadRequest(f"at most {MAX_DIGESTS} partitions per request")
    store = request.app[STORE]
    if not isinstance(store, DiskStore):
        raise BadRequest("this node's store keeps no partitions to digest")
    digests = await asyncio.get_running_loop().run_in_executor(
        store.pool, lambda: {str(p): partition_digest(store, p) for p in partitions}
    )
    return web.json_response({"digests": digests})
