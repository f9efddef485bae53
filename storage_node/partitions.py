"""Partition resource: what one partition holds on this node, and digests of many at once, for
the replicator and audits."""

from __future__ import annotations

from aiohttp import web

from storage_node.errors import BadRequest
from storage_node.keys import STORE
from storage_node.replicator import digest_of

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
    digests = {str(p): digest_of(await store.list_partition(p)) for p in partitions}
    return web.json_response({"digests": digests})
