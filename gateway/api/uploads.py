"""Multipart upload resource: initiate, parts, progress, complete, abort, list in progress."""

from __future__ import annotations

import time
from typing import Any

from aiohttp import hdrs, web

from gateway.api.bodies import json_object
from gateway.api.objects import parse_digests
from gateway.catalog import PartRecord, UploadRecord
from gateway.errors import InvalidArgument, MissingContentLength
from gateway.keys import CONFIG, MULTIPART, PRINCIPAL
from gateway.multipart import MultipartUploads
from gateway.names import check_bucket, check_content_type, check_key, check_metadata, json_name
from shardgate.streams import decoded_length, sized_chunks


def _iso(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def _upload_json(uploads: MultipartUploads, upload: UploadRecord) -> dict[str, Any]:
    rules = uploads.rules
    return {
        "upload_id": upload.upload_id,
        "bucket": upload.bucket,
        "key": upload.key,
        "content_type": upload.content_type,
        "metadata": dict(upload.user_meta),
        "min_part_size": rules.min_part_size,
        "max_part_size": rules.max_part_size,
        "max_parts": rules.max_parts,
        "expires_at": _iso(upload.expires),
    }


async def _owned(request: web.Request, right: str) -> UploadRecord:
    uploads = request.app[MULTIPART]
    upload = await uploads.open_upload(request.match_info["upload_id"])
    request[PRINCIPAL].require(right, upload.bucket)
    return upload


async def initiate(request: web.Request) -> web.Response:
    body = await json_object(request)
    bucket = check_bucket(json_name(body, "bucket"))
    key = check_key(json_name(body, "key"))
    request[PRINCIPAL].require("write", bucket)
    content_type = check_content_type(body.get("content_type", "application/octet-stream"))
    metadata = check_metadata(body.get("metadata", {}))
    uploads = request.app[MULTIPART]
    upload = await uploads.initiate(bucket, key, content_type, metadata)
    return web.json_response(_upload_json(uploads, upload), status=201)


async def list_uploads(request: web.Request) -> web.Response:
    bucket = check_bucket(request.query.get("bucket", ""))
    request[PRINCIPAL].require("read", bucket)
    uploads = request.app[MULTIPART]
    found = await uploads.in_progress(bucket)
    return web.json_response({"uploads": [_upload_json(uploads, upload) for upload in found]})


async def put_part(request: web.Request) -> web.Response:
    upload = await _owned(request, "write")
    number = int(request.match_info["part_number"])
    chunked = "chunked" in request.headers.get(hdrs.TRANSFER_ENCODING, "").lower()
    if request.content_length is None and not chunked:
        raise MissingContentLength("send Content-Length or Transfer-Encoding: chunked")
    md5, sha256 = parse_digests(request)
    config = request.app[CONFIG]
    part = await request.app[MULTIPART].upload_part(
        upload.upload_id,
        number,
        sized_chunks(request.content, config.chunk_size, config.body_idle_timeout),
        size=decoded_length(request),
        md5=md5,
        sha256=sha256,
    )
    return web.json_response(part.to_json(), headers={hdrs.ETAG: f'"{part.etag}"'})


async def progress(request: web.Request) -> web.Response:
    await _owned(request, "read")
    uploads = request.app[MULTIPART]
    upload, parts = await uploads.progress(request.match_info["upload_id"])
    return web.json_response(_progress_json(uploads, upload, parts))


def _progress_json(
    uploads: MultipartUploads, upload: UploadRecord, parts: list[PartRecord]
) -> dict[str, Any]:
    return {
        **_upload_json(uploads, upload),
        "parts": [part.to_json() for part in parts],
        "bytes_received": sum(part.size for part in parts),
    }


async def presign_part(request: web.Request) -> web.Response:
    upload = await _owned(request, "write")
    body = await json_object(request) if request.can_read_body else {}
    expires_in, size = body.get("expires_in"), body.get("size")
    if (expires_in is not None and type(expires_in) not in (int, float)) or (
        size is not None and (type(size) is not int or size < 0)
    ):
        raise InvalidArgument("expires_in is a number of seconds and size a byte count")
    number = int(request.match_info["part_number"])
    presigned = await request.app[MULTIPART].presign_part(
        upload.upload_id, number, expires_in=expires_in, size=size
    )
    return web.json_response(presigned.to_json())


async def complete(request: web.Request) -> web.Response:
    upload = await _owned(request, "write")
    body = await json_object(request)
    parts = body.get("parts")
    if not isinstance(parts, list) or not all(
        isinstance(p, dict)
        and isinstance(p.get("part_number"), int)
        and isinstance(p.get("etag"), str)
        for p in parts
    ):
        raise InvalidArgument('send {"parts": [{"part_number": 1, "etag": "..."}, ...]}')
    listed = [(p["part_number"], p["etag"]) for p in parts]
    record = await request.app[MULTIPART].complete(upload.upload_id, listed)
    return web.json_response(record.to_json(), status=201)


async def abort(request: web.Request) -> web.Response:
    upload = await _owned(request, "write")
    await request.app[MULTIPART].abort(upload.upload_id)
    return web.Response(status=204)
