"""Object resource: streaming PUT, GET and HEAD with ranges and validators, DELETE."""

from __future__ import annotations

import base64
import binascii
import logging
import re
import time

from aiohttp import hdrs, web

from gateway.catalog import ObjectRecord
from gateway.errors import (
    InvalidArgument,
    InvalidDigest,
    MissingContentLength,
    PreconditionFailed,
    ServiceUnavailable,
)
from gateway.keys import CONFIG, METRICS, OBJECTS, PRINCIPAL
from gateway.names import check_bucket, check_key
from gateway.nodes import NodeError
from shardgate.internal_api import (
    META_PREFIX,
    PUBLIC_META_PREFIX,
    VERSION_HEADER,
    meta_from_headers,
    meta_headers,
)
from shardgate.media import public_meta_headers, safety_headers
from shardgate.streams import decoded_length, sized_chunks

log = logging.getLogger(__name__)
_RELAYED = (hdrs.CONTENT_TYPE, hdrs.ETAG, hdrs.LAST_MODIFIED, hdrs.CONTENT_RANGE, VERSION_HEADER)
_HEX64 = re.compile(r"[0-9a-fA-F]{64}")


def _address(request: web.Request) -> tuple[str, str]:
    return check_bucket(request.match_info["bucket"]), check_key(request.match_info["key"])


def _download_headers(record: ObjectRecord) -> dict[str, str]:
    """Validators and metadata; active content is served as an attachment so it never runs
    in the gateway's origin, and nothing is sniffed into something else."""
    headers = {
        hdrs.CONTENT_TYPE: record.content_type,
        hdrs.ETAG: f'"{record.etag}"',
        hdrs.LAST_MODIFIED: time.strftime(
            "%a, %d %b %Y %H:%M:%S GMT", time.gmtime(record.modified)
        ),
        hdrs.ACCEPT_RANGES: "bytes",
        VERSION_HEADER: record.version,
    }
    headers.update(safety_headers(record.key, record.content_type))
    headers.update(public_meta_headers(record.user_meta))
    headers.update(_mirror_headers(record))
    return headers


def _mirror_headers(record: ObjectRecord) -> dict[str, str]:
    """The S3 mirror's state for this version (its URL once synced, its error once failed)."""
    mirror = record.mirror
    headers = {"X-Shardgate-Mirror-State": mirror.state}
    if mirror.url:
        headers["X-Shardgate-Mirror-Url"] = mirror.url
    if mirror.error:
        printable = "".join(c if " " <= c <= "~" else " " for c in mirror.error)
        headers["X-Shardgate-Mirror-Error"] = printable[:300]
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


def _b64_hex(raw: str, size: int) -> str | None:
    try:
        decoded = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        return None
    return decoded.hex() if len(decoded) == size else None


def parse_digests(request: web.Request) -> tuple[str | None, str | None]:
    """Content-MD5 (base64) and X-Checksum-SHA256 (hex or base64) as lower-case hex."""
    md5 = sha256 = None
    if (raw := request.headers.get("Content-MD5")) is not None:
        md5 = _b64_hex(raw, 16)
        if md5 is None:
            raise InvalidDigest("Content-MD5 must be the base64 of a 16-byte md5")
    if (raw := request.headers.get("X-Checksum-SHA256")) is not None:
        sha256 = raw.lower() if _HEX64.fullmatch(raw) else _b64_hex(raw, 32)
        if sha256 is None:
            raise InvalidDigest("X-Checksum-SHA256 must be a sha256 in hex or base64")
    return md5, sha256


async def put_object(request: web.Request) -> web.Response:
    bucket, key = _address(request)
    request[PRINCIPAL].require("write", bucket)
    chunked = "chunked" in request.headers.get(hdrs.TRANSFER_ENCODING, "").lower()
    if request.content_length is None and not chunked:
        raise MissingContentLength("send Content-Length or Transfer-Encoding: chunked")
    if_none_match = request.headers.get(hdrs.IF_NONE_MATCH)
    if if_none_match not in (None, "*"):
        raise InvalidArgument("only If-None-Match: * (create only) is supported on PUT")
    md5, sha256 = parse_digests(request)
    config = request.app[CONFIG]
    record = await request.app[OBJECTS].put(
        bucket,
        key,
        sized_chunks(request.content, config.chunk_size, config.body_idle_timeout),
        size=decoded_length(request),
        content_type=request.headers.get(hdrs.CONTENT_TYPE, "application/octet-stream"),
        user_meta=meta_from_headers(request.headers, PUBLIC_META_PREFIX),
        md5=md5,
        sha256=sha256,
        create_only=if_none_match == "*",
    )
    return web.json_response(record.to_json(), status=201, headers={hdrs.ETAG: f'"{record.etag}"'})


async def get_object(request: web.Request) -> web.StreamResponse:
    bucket, key = _address(request)
    objects = request.app[OBJECTS]
    principal = request[PRINCIPAL]
    if not principal.may("read", bucket) and not (await objects.bucket(bucket)).public_read:
        principal.require("read", bucket)
    record = await objects.head(bucket, key)
    headers = _download_headers(record)
    if _not_modified(request, record):
        return web.Response(status=304, headers=headers)
    if request.method == hdrs.METH_HEAD:
        headers[hdrs.CONTENT_LENGTH] = str(record.size)
        return web.Response(headers=headers)
    range_header = request.headers.get(hdrs.RANGE)
    if_range = request.headers.get(hdrs.IF_RANGE)
    if range_header and if_range is not None and if_range.strip() != f'"{record.etag}"':
        range_header = None  # the client holds part of another version: send this one whole
    stream = await objects.open(record, range_header)
    headers.update({name: stream.headers[name] for name in _RELAYED if name in stream.headers})
    headers.update(meta_headers(meta_from_headers(stream.headers, META_PREFIX), PUBLIC_META_PREFIX))
    chunk_size = request.app[CONFIG].chunk_size
    sent = request.app[METRICS].sent_bytes
    if stream.length <= chunk_size:
        # Small: read it whole (failover still applies) and answer with one write.
        try:
            body = b"".join([chunk async for chunk in stream.chunks(chunk_size)])
        except NodeError as exc:
            raise ServiceUnavailable(
                f"no replica of {bucket}/{key} could be read; try again"
            ) from exc
        sent.inc(len(body))
        return web.Response(status=stream.status, headers=headers, body=body)
    response = web.StreamResponse(status=stream.status, headers=headers)
    response.content_length = stream.length
    await response.prepare(request)
    try:
        async for chunk in stream.chunks(chunk_size):
            await response.write(chunk)
            sent.inc(len(chunk))
    except NodeError as exc:
        # Headers are out: the only honest signal left is to cut the connection short.
        log.error("download of %s/%s failed on every replica: %s", bucket, key, exc)
        if request.transport is not None:
            request.transport.close()
        return response
    await response.write_eof()
    return response


async def delete_object(request: web.Request) -> web.Response:
    bucket, key = _address(request)
    request[PRINCIPAL].require("write", bucket)
    await request.app[OBJECTS].delete(bucket, key)
    return web.Response(status=204)
