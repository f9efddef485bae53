"""Object resource: streaming PUT, GET and HEAD with ranges and validators, DELETE."""

from __future__ import annotations

import logging
import time

from aiohttp import hdrs, web

from gateway.catalog import ObjectRecord
from gateway.errors import MissingContentLength, PreconditionFailed
from gateway.keys import CONFIG, METRICS, OBJECTS
from gateway.names import check_bucket, check_key
from gateway.nodes import NodeError
from shardgate.internal_api import (
    META_PREFIX,
    PUBLIC_META_PREFIX,
    VERSION_HEADER,
    meta_from_headers,
    meta_headers,
)
from shardgate.streams import sized_chunks

log = logging.getLogger(__name__)
_RELAYED = (hdrs.CONTENT_TYPE, hdrs.ETAG, hdrs.LAST_MODIFIED, hdrs.CONTENT_RANGE, VERSION_HEADER)


def _address(request: web.Request) -> tuple[str, str]:
    return check_bucket(request.match_info["bucket"]), check_key(request.match_info["key"])


def _record_headers(record: ObjectRecord) -> dict[str, str]:
    headers = {
        hdrs.CONTENT_TYPE: record.content_type,
        hdrs.ETAG: f'"{record.etag}"',
        hdrs.LAST_MODIFIED: time.strftime(
            "%a, %d %b %Y %H:%M:%S GMT", time.gmtime(record.modified)
        ),
        hdrs.ACCEPT_RANGES: "bytes",
        VERSION_HEADER: record.version,
    }
    headers.update(meta_headers(record.user_meta, PUBLIC_META_PREFIX))
    return headers


def _not_modified(request: web.Request, record: ObjectRecord) -> bool:
    """If-Match and If-None-Match against the catalog's ETag, without asking a node."""
    if_match = request.if_match
    if if_match is not None and not any(tag.value in ("*", record.etag) for tag in if_match):
        raise PreconditionFailed("If-Match does not match the object's ETag")
    if_none_match = request.if_none_match
    return if_none_match is not None and any(
        tag.value in ("*", record.etag) for tag in if_none_match
    )


async def put_object(request: web.Request) -> web.Response:
    bucket, key = _address(request)
    chunked = "chunked" in request.headers.get(hdrs.TRANSFER_ENCODING, "").lower()
    if request.content_length is None and not chunked:
        raise MissingContentLength("send Content-Length or Transfer-Encoding: chunked")
    record = await request.app[OBJECTS].put(
        bucket,
        key,
        sized_chunks(request.content, request.app[CONFIG].chunk_size),
        size=request.content_length,
        content_type=request.headers.get(hdrs.CONTENT_TYPE, "application/octet-stream"),
        user_meta=meta_from_headers(request.headers, PUBLIC_META_PREFIX),
    )
    return web.json_response(record.to_json(), status=201, headers={hdrs.ETAG: f'"{record.etag}"'})


async def get_object(request: web.Request) -> web.StreamResponse:
    bucket, key = _address(request)
    objects = request.app[OBJECTS]
    record = await objects.head(bucket, key)
    headers = _record_headers(record)
    if _not_modified(request, record):
        return web.Response(status=304, headers=headers)
    if request.method == hdrs.METH_HEAD:
        headers[hdrs.CONTENT_LENGTH] = str(record.size)
        return web.Response(headers=headers)
    stream = await objects.open(record, request.headers.get(hdrs.RANGE))
    response = web.StreamResponse(status=stream.status)
    response.headers.update(
        {name: stream.headers[name] for name in _RELAYED if name in stream.headers}
    )
    response.headers[hdrs.ACCEPT_RANGES] = "bytes"
    response.headers.update(
        meta_headers(meta_from_headers(stream.headers, META_PREFIX), PUBLIC_META_PREFIX)
    )
    response.content_length = stream.length
    await response.prepare(request)
    sent = request.app[METRICS].sent_bytes
    try:
        async for chunk in stream.chunks(request.app[CONFIG].chunk_size):
            await response.write(chunk)
            sent.inc(len(chunk))
    except NodeError as exc:
        # Headers are out: the only honest signal left is to cut the connection short.
        log.error("download of %s/%s failed on every replica: %s", bucket, key, exc)
        raise ConnectionResetError(str(exc)) from exc
    await response.write_eof()
    return response


async def delete_object(request: web.Request) -> web.Response:
    bucket, key = _address(request)
    await request.app[OBJECTS].delete(bucket, key)
    return web.Response(status=204)
