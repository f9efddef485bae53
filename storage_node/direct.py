"""Direct uploads and downloads with an upload token: a browser or app talks to the node and
the gateway carries none of the bytes. Uploads are kept pending until the gateway commits them;
while one arrives, it is streamed to the partition's other primaries (storage_node.early_copies).

Every scope in the token is enforced: node, bucket, key, method, expiry (when the request
starts, so a slow upload may finish later), size (while streaming), content type, sha256 and a
single use of the upload id.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import replace

from aiohttp import BodyPartReader, hdrs, web
from multidict import CIMultiDict

from ring import object_hash
from shardgate.media import allowed, public_meta_headers, safety_headers
from shardgate.streams import decoded_length, sized_chunks
from shardgate.tokens import Claims, TokenRejected, verify
from shardgate.web import CORS_ORIGIN, origin_allowed, preflight_headers
from storage_node.disk import DiskStore
from storage_node.early_copies import EarlyCopies, early_copy_targets
from storage_node.errors import (
    BadDigest,
    BadRequest,
    CorsForbidden,
    EntityTooLarge,
    UnsupportedMediaType,
)
from storage_node.keys import CONFIG, METRICS, PEERS, RINGS, STORE
from storage_node.objects import current_version, http_date, serve_version
from storage_node.records import PendingUpload

UPLOAD_METHODS = ("PUT", "POST")
READ_METHODS = ("GET", "HEAD")


def _claims(request: web.Request, token: str | None, methods: tuple[str, ...]) -> Claims:
    if not token:
        raise TokenRejected("missing", "send the upload token (?token= or a 'token' form field)")
    config = request.app[CONFIG]
    claims = verify(token, config.token_keys)
    origin = request.headers.get("Origin")
    if origin and origin_allowed(origin, claims.origins):
        request[CORS_ORIGIN] = origin
    if claims.method not in methods:
        raise TokenRejected("method", f"the token is for {claims.method}, not {request.method}")
    if claims.node != config.node_id:
        raise TokenRejected("node", "the token is for another node")
    if claims.bucket != request.match_info["bucket"]:
        raise TokenRejected("bucket", "the token is for another bucket")
    if claims.key != request.match_info["key"]:
        raise TokenRejected("key", "the token is for another key")
    return claims


def disk_store(request: web.Request) -> DiskStore:
    store = request.app[STORE]
    if not isinstance(store, DiskStore):
        raise BadRequest("this node's store does not keep direct uploads")
    return store


async def _receive(
    request: web.Request,
    claims: Claims,
    body: AsyncIterator[bytes],
    content_type: str,
    declared: int | None,
) -> web.Response:
    if not allowed(content_type, claims.content_types):
        raise UnsupportedMediaType(f"the token does not allow content type {content_type!r}")
    limit = claims.size if claims.size is not None else claims.max_size
    if declared is not None and limit is not None and declared > limit:
        raise EntityTooLarge(f"the token allows at most {limit} bytes")
    store = disk_store(request)
    await store.uploads.claim(claims.upload_id, claims.commit_by)
    try:
        upload = await _store_pending(request, claims, body, content_type, limit, declared)
    finally:
        store.uploads.release(claims.upload_id)
    body_json = {
        k: getattr(upload, k) for k in ("upload_id", "bucket", "key", "size", "etag", "sha256")
    }
    return web.json_response(body_json, status=201)


async def _store_pending(
    request: web.Request,
    claims: Claims,
    body: AsyncIterator[bytes],
    content_type: str,
    limit: int | None,
    declared: int | None,
) -> PendingUpload:
    store, config, metrics = disk_store(request), request.app[CONFIG], request.app[METRICS]
    template = PendingUpload(
        upload_id=claims.upload_id,
        bucket=claims.bucket,
        key=claims.key,
        partition=claims.partition,
        obj_hash=object_hash(claims.bucket, claims.key),
        size=0,
        etag="",
        sha256=None,
        content_type=content_type,
        head="",
        received=0.0,
        commit_by=claims.commit_by,
    )
    writer = await store.create_writer(
        template.partition, template.obj_hash, sha256=claims.sha256 is not None
    )
    copies = EarlyCopies(
        request.app[PEERS],
        config.node_id,
        template,
        stall=config.copy_stall_timeout,
        length=_plain_length(request, declared),
    )
    try:
        copies.start(
            await early_copy_targets(request.app.get(RINGS), config.node_id, claims.partition)
        )
        async for chunk in body:
            if limit is not None and writer.bytes_written + len(chunk) > limit:
                raise EntityTooLarge(f"the token allows at most {limit} bytes")
            await copies.feed(chunk)
            await writer.write(chunk)
            metrics.bytes_received.inc(len(chunk))
        if claims.size is not None and writer.bytes_written != claims.size:
            raise BadRequest(f"the token is for exactly {claims.size} bytes")
        if claims.sha256 is not None and await writer.sha256() != claims.sha256:
            raise BadDigest("the body's sha256 is not the one the token binds")
        # The peers and this node make their copies durable at the same time.
        held, _ = await asyncio.gather(copies.finish(), writer.sync())
        upload = await writer.commit_pending(
            replace(template, head=writer.head.hex(), received=time.time(), copies=held)
        )
    finally:
        await writer.abort()
        await copies.close()
    metrics.early_copies.labels("held").inc(len(held))
    metrics.early_copies.labels("dropped").inc(len(copies.failed))
    return upload


def _plain_length(request: web.Request, declared: int | None) -> int | None:
    """The body's length as the early copies will carry it, where the header states it (None
    for a form's file, whose header gives the whole form's). None for an empty body too, whose
    copies would otherwise be whole before any check ran."""
    if declared is None:
        return None
    return decoded_length(request) or None


async def put_direct(request: web.Request) -> web.Response:
    claims = _claims(request, request.query.get("token"), ("PUT",))
    config = request.app[CONFIG]
    body = sized_chunks(request.content, config.chunk_size, config.body_idle_timeout)
    content_type = request.headers.get(hdrs.CONTENT_TYPE, "application/octet-stream")
    return await _receive(request, claims, body, content_type, request.content_length)


async def _form_chunks(part: BodyPartReader, size: int) -> AsyncIterator[bytes]:
    while chunk := await part.read_chunk(size):
        yield chunk


async def post_direct(request: web.Request) -> web.Response:
    """A browser form: the token field (or ?token=) first, the file last, as S3's POST policy."""
    reader = await request.multipart()
    token = request.query.get("token")
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader):
            raise BadRequest("nested multipart bodies are not supported")
        if part.name == "file":
            claims = _claims(request, token, ("PUT",))
            content_type = part.headers.get(hdrs.CONTENT_TYPE, "application/octet-stream")
            chunks = _form_chunks(part, request.app[CONFIG].chunk_size)
            return await _receive(request, claims, chunks, content_type, None)
        value = await _field(part)
        if part.name == "token":
            token = value
    raise BadRequest("the form has no 'file' part")


async def _field(part: BodyPartReader, limit: int = 8192) -> str:
    """A small form field, read whole however the network splits it."""
    data = bytearray()
    while chunk := await part.read_chunk(limit):
        data += chunk
        if len(data) > limit:
            raise BadRequest(f"form field {part.name!r} is longer than {limit} bytes")
    return data.decode(errors="replace")


async def get_direct(request: web.Request) -> web.StreamResponse:
    claims = _claims(request, request.query.get("token"), ("GET",))
    obj_hash = object_hash(claims.bucket, claims.key)
    meta = await current_version(request, claims.partition, obj_hash, claims.min_version)
    headers: CIMultiDict[str] = CIMultiDict(
        {
            hdrs.CONTENT_TYPE: meta.content_type,
            hdrs.ETAG: f'"{meta.etag}"',
            hdrs.LAST_MODIFIED: http_date(meta.version),
            hdrs.ACCEPT_RANGES: "bytes",
            "X-Shardgate-Version": meta.version,
        }
    )
    headers.update(safety_headers(meta.key, meta.content_type))
    headers.update(public_meta_headers(meta.user_meta))
    # A client, unlike the gateway reading for one, takes bytes only as fast as its link:
    # sendfile tops its socket up rather than queueing megabytes ahead of it.
    limit = request.app[CONFIG].notsent_lowat_bytes
    return await serve_version(
        request, claims.partition, obj_hash, meta, headers, unsent_limit=limit
    )


async def preflight_direct(request: web.Request) -> web.Response:
    """CORS preflight for a browser PUT: the token in the URL says which origins may use it."""
    origin = request.headers.get("Origin", "")
    method = request.headers.get("Access-Control-Request-Method", "").upper()
    claims = verify(request.query.get("token", ""), request.app[CONFIG].token_keys)
    methods = UPLOAD_METHODS if claims.method == "PUT" else READ_METHODS
    if not origin or not origin_allowed(origin, claims.origins) or method not in methods:
        raise CorsForbidden(f"origin {origin!r} may not {method or 'call'} here")
    requested = request.headers.get("Access-Control-Request-Headers", "")
    return web.Response(status=204, headers=preflight_headers(origin, methods, requested))
