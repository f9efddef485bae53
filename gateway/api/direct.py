"""Presign and commit: the two gateway calls around a direct upload to (or download from) a node."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from gateway.api.bodies import json_object
from gateway.direct_uploads import PresignRequest
from gateway.errors import InvalidArgument
from gateway.keys import DIRECT, OBJECTS, PRINCIPAL
from gateway.names import check_bucket, check_content_type, check_key, json_name

_HEX32 = re.compile(r"[0-9a-f]{32}")
_HEX64 = re.compile(r"[0-9a-f]{64}")


def _optional(body: dict[str, Any], name: str, kind: type | tuple[type, ...], what: str) -> Any:
    value = body.get(name)
    if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
        raise InvalidArgument(f"{name} must be {what}")
    return value


async def presign(request: web.Request) -> web.Response:
    body = await json_object(request)
    bucket = check_bucket(json_name(body, "bucket"))
    key = check_key(json_name(body, "key"))
    method = body.get("method", "PUT")
    if method not in ("PUT", "GET"):
        raise InvalidArgument("method must be PUT (also for browser form POSTs) or GET")
    principal = request[PRINCIPAL]
    if method == "GET":
        if (
            not principal.may("read", bucket)
            and not (await request.app[OBJECTS].bucket(bucket)).public_read
        ):
            principal.require("read", bucket)
    else:
        principal.require("write", bucket)
    sha256 = _optional(body, "sha256", str, "a string")
    if sha256 is not None and not _HEX64.fullmatch(sha256):
        raise InvalidArgument("sha256 must be 64 lower-case hex digits")
    expires_in = _optional(body, "expires_in", (int, float), "a number of seconds")
    if expires_in is not None and not 0 < expires_in < 10**9:
        raise InvalidArgument("expires_in must be a positive number of seconds")
    max_size, size = (_optional(body, name, int, "a byte count") for name in ("max_size", "size"))
    if any(value is not None and value < 0 for value in (max_size, size)):
        raise InvalidArgument("max_size and size must not be negative")
    if max_size is not None and size is not None and size > max_size:
        raise InvalidArgument("size is larger than max_size")
    content_type = body.get("content_type")
    presigned = await request.app[DIRECT].presign(
        PresignRequest(
            bucket=bucket,
            key=key,
            method=method,
            expires_in=float(expires_in) if expires_in is not None else None,
            max_size=max_size,
            size=size,
            content_type=None if content_type is None else check_content_type(content_type),
            sha256=sha256,
        )
    )
    return web.json_response(presigned.to_json())


async def commit(request: web.Request) -> web.Response:
    bucket = check_bucket(request.match_info["bucket"])
    key = check_key(request.match_info["key"])
    request[PRINCIPAL].require("write", bucket)
    body = await json_object(request)
    size = body.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise InvalidArgument("size (the number of bytes uploaded) is required")
    md5, sha256 = (_optional(body, name, str, "hex") for name in ("md5", "sha256"))
    if md5 is None and sha256 is None:
        raise InvalidArgument("state the upload's md5 or sha256 (hex)")
    if (md5 is not None and not _HEX32.fullmatch(md5)) or (
        sha256 is not None and not _HEX64.fullmatch(sha256)
    ):
        raise InvalidArgument("md5 and sha256 are lower-case hex")
    record = await request.app[DIRECT].commit(
        bucket,
        key,
        upload_id=_optional(body, "upload_id", str, "a string"),
        size=size,
        md5=md5,
        sha256=sha256,
    )
    return web.json_response(record.to_json(), status=201)
