"""CORS per bucket: preflight answers, and headers on the actual responses, for the origins a
bucket allows and no others. Browsers send no API key on a preflight, so it needs none."""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Middleware

from gateway.errors import CorsForbidden, InvalidArgument
from gateway.keys import CATALOG
from gateway.names import check_bucket
from shardgate.web import CORS_ORIGIN, Handler, origin_allowed, preflight_headers

ALLOW_METHODS = ("GET", "HEAD", "PUT", "POST", "DELETE")
ALLOW_HEADERS = frozenset(
    {
        "authorization",
        "content-type",
        "content-md5",
        "x-checksum-sha256",
        "if-match",
        "if-none-match",
        "if-range",
        "range",
    }
)
_OBJECTS = "/v1/objects/"


async def preflight(request: web.Request) -> web.Response:
    origin = request.headers.get("Origin")
    method = request.headers.get("Access-Control-Request-Method", "").upper()
    if not origin or not method:
        raise InvalidArgument("a CORS preflight needs Origin and Access-Control-Request-Method")
    bucket = await request.app[CATALOG].get_bucket(check_bucket(request.match_info["bucket"]))
    if bucket is None or not origin_allowed(origin, bucket.cors_origins):
        raise CorsForbidden(f"origin {origin!r} may not use this bucket")
    if method not in ALLOW_METHODS:
        raise CorsForbidden(f"method {method} is not allowed across origins")
    requested = [
        h.strip().lower()
        for h in request.headers.get("Access-Control-Request-Headers", "").split(",")
    ]
    requested = [h for h in requested if h]
    refused = [h for h in requested if h not in ALLOW_HEADERS and not h.startswith("x-meta-")]
    if refused:
        raise CorsForbidden(f"headers {refused} are not allowed across origins")
    headers = preflight_headers(origin, ALLOW_METHODS, ", ".join(requested))
    return web.Response(status=204, headers=headers)


def cors_middleware() -> Middleware:
    """Notes the request's origin when its bucket allows it; shardgate.web.add_cors_headers stamps
    every response, error or stream alike, just before its headers go out."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        if origin and request.method != "OPTIONS" and request.path.startswith(_OBJECTS):
            name = request.path[len(_OBJECTS) :].split("/", 1)[0]
            bucket = await request.app[CATALOG].get_bucket(name)
            if bucket is not None and origin_allowed(origin, bucket.cors_origins):
                request[CORS_ORIGIN] = origin
        return await handler(request)

    return middleware
