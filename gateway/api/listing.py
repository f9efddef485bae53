"""Object listing: keyset pages from the catalog, with an opaque cursor."""

from __future__ import annotations

import base64
import binascii

from aiohttp import web

from gateway.errors import InvalidArgument
from gateway.keys import OBJECTS, PRINCIPAL
from gateway.names import check_bucket

MAX_PAGE = 1000


def _cursor(key: str) -> str:
    return base64.urlsafe_b64encode(key.encode()).decode().rstrip("=")


def _after(cursor: str) -> str:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        return base64.b64decode(padded, altchars=b"-_", validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidArgument("'after' is not a cursor this gateway issued") from None


async def list_objects(request: web.Request) -> web.Response:
    bucket = check_bucket(request.match_info["bucket"])
    request[PRINCIPAL].require("read", bucket)
    try:
        limit = int(request.query.get("limit", MAX_PAGE))
    except ValueError:
        raise InvalidArgument("limit must be a whole number") from None
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidArgument(f"limit must be between 1 and {MAX_PAGE}")
    after = _after(request.query["after"]) if request.query.get("after") else ""
    page, last = await request.app[OBJECTS].list(
        bucket, prefix=request.query.get("prefix", ""), after=after, limit=limit
    )
    return web.json_response(
        {"objects": [record.to_json() for record in page], "next": _cursor(last) if last else None}
    )
