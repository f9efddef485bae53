"""Pending uploads as the gateway sees them (signed): inspect, copy to a peer, publish, drop."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from aiohttp import web

from shardgate.versions import is_version
from storage_node.direct import disk_store
from storage_node.errors import BadRequest, NoSuchUpload
from storage_node.keys import PEERS
from storage_node.records import NewVersion, ObjectMeta, PendingUpload


async def _received(request: web.Request) -> PendingUpload:
    upload = await disk_store(request).uploads.get(request.match_info["upload_id"])
    if upload is None or upload.state == "dropped":
        raise NoSuchUpload("no such pending upload on this node")
    return upload


async def _version(request: web.Request) -> tuple[str, dict[str, Any]]:
    body = await request.json()
    version = body.get("version", "") if isinstance(body, dict) else ""
    if not is_version(version):
        raise BadRequest('send {"version": <20-digit version>}')
    return version, body


async def get_pending(request: web.Request) -> web.Response:
    upload = await _received(request)
    return web.json_response(asdict(upload))


async def copy_pending(request: web.Request) -> web.Response:
    """Push the pending bytes to one peer as version V (the commit's replication, node to node)."""
    upload = await _received(request)
    version, body = await _version(request)
    peer = body.get("peer_url")
    if not isinstance(peer, str) or not peer.startswith(("http://", "https://")):
        raise BadRequest("send the peer's URL as peer_url")
    meta = ObjectMeta(
        upload.bucket,
        upload.key,
        version,
        upload.size,
        upload.etag,
        upload.content_type,
        blocks=upload.blocks,
        block_sum=upload.block_sum,
    )
    store = disk_store(request)
    path = store.uploads.data(upload.upload_id)
    if upload.state == "published":
        path = store.data_path(upload.partition, upload.obj_hash, upload.version)
    status, answer = await request.app[PEERS].push(
        peer, upload.partition, upload.obj_hash, meta, path
    )
    return web.json_response({"status": status, "answer": answer})


async def publish_pending(request: web.Request) -> web.Response:
    upload = await _received(request)
    version, _ = await _version(request)
    new = NewVersion(upload.bucket, upload.key, version, upload.content_type)
    meta = await disk_store(request).uploads.publish(upload, new)
    return web.json_response(meta.listing_entry(), status=201)


async def drop_pending(request: web.Request) -> web.Response:
    upload = await _received(request)
    await disk_store(request).uploads.drop(upload)
    return web.json_response({"dropped": upload.upload_id})
