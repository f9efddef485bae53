"""Pending uploads as the gateway and the peers see them (signed): receive an early copy from
the node a client uploads to, inspect, copy to a peer, publish, drop."""

from __future__ import annotations

import time
from dataclasses import asdict, replace
from typing import Any

from aiohttp import hdrs, web

from ring import object_hash
from shardgate.block_sums import blocks_digest
from shardgate.internal_api import (
    BUCKET_HEADER,
    COMMIT_BY_HEADER,
    KEY_HEADER,
    PARTITION_HEADER,
    SOURCE_HEADER,
    decode_key,
)
from shardgate.streams import network_reads
from shardgate.versions import is_version
from storage_node.direct import disk_store
from storage_node.errors import BadDigest, BadRequest, NoSuchUpload
from storage_node.keys import CONFIG, METRICS, PEERS
from storage_node.objects import write_reads
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


def _copy_of(request: web.Request) -> PendingUpload:
    """The upload an early copy belongs to, as its source describes it in the headers."""
    headers = request.headers
    try:
        bucket, key = headers[BUCKET_HEADER], decode_key(headers[KEY_HEADER])
        partition, commit_by = int(headers[PARTITION_HEADER]), float(headers[COMMIT_BY_HEADER])
        source = headers[SOURCE_HEADER]
    except (KeyError, ValueError) as exc:
        raise BadRequest(f"an early copy needs its upload's headers: {exc}") from None
    return PendingUpload(
        upload_id=request.match_info["upload_id"],
        bucket=bucket,
        key=key,
        partition=partition,
        obj_hash=object_hash(bucket, key),
        size=0,
        etag="",
        sha256=None,
        content_type=headers.get(hdrs.CONTENT_TYPE, "application/octet-stream"),
        head="",
        received=0.0,
        commit_by=commit_by,
        source=source,
    )


async def receive_copy(request: web.Request) -> web.Response:
    """Keep an early copy of a direct upload, pending as the upload is on its source. No md5:
    the commit publishes it with the source's, once their block sums agree."""
    template = _copy_of(request)
    store, config, metrics = disk_store(request), request.app[CONFIG], request.app[METRICS]
    await store.uploads.claim(template.upload_id, template.commit_by)
    try:
        writer = await store.create_writer(template.partition, template.obj_hash, md5=False)
        try:
            reads = network_reads(request.content, config.body_idle_timeout)
            await write_reads(writer, reads, config.chunk_size, metrics.bytes_received.inc)
            upload = await writer.commit_pending(replace(template, received=time.time()))
        finally:
            await writer.abort()
    finally:
        store.uploads.release(template.upload_id)
    return web.json_response(
        {
            "upload_id": upload.upload_id,
            "size": upload.size,
            "blocks_digest": blocks_digest(upload.blocks),
        },
        status=201,
    )


async def get_pending(request: web.Request) -> web.Response:
    """What was received; `?sha256=1` has the node hash it if the token bound no sha256. An
    upload whose bytes are gone (published, then replaced) is no longer here: a commit then
    stops before it touches a peer."""
    upload = await _received(request)
    await disk_store(request).uploads.body(upload)
    if request.query.get("sha256") == "1":
        upload = await disk_store(request).uploads.with_sha256(upload)
    return web.json_response({**asdict(upload), "blocks_digest": blocks_digest(upload.blocks)})


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
    path = await disk_store(request).uploads.body(upload)
    status, answer = await request.app[PEERS].push(
        peer, upload.partition, upload.obj_hash, meta, path
    )
    return web.json_response({"status": status, "answer": answer})


async def publish_pending(request: web.Request) -> web.Response:
    """Publish as version V; an early copy only with the md5 and block digest of its source's."""
    upload = await _received(request)
    version, body = await _version(request)
    if upload.source:
        if (body.get("size"), body.get("blocks_digest")) != (
            upload.size,
            blocks_digest(upload.blocks),
        ):
            raise BadDigest("this early copy differs from the upload on its source")
        etag = body.get("etag")
        if not isinstance(etag, str) or not etag:
            raise BadRequest("an early copy is published with its source's etag")
        upload = replace(upload, etag=etag)
    new = NewVersion(upload.bucket, upload.key, version, upload.content_type)
    meta = await disk_store(request).uploads.publish(upload, new)
    return web.json_response(meta.listing_entry(), status=201)


async def drop_pending(request: web.Request) -> web.Response:
    upload = await _received(request)
    await disk_store(request).uploads.drop(upload)
    return web.json_response({"dropped": upload.upload_id})
