"""The bulkhead as middleware: uploads, downloads and other API calls each take a slot of their
own kind, refused at once when full; health, readiness, metrics and preflights never queue."""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Middleware

from gateway.auth import PUBLIC_PATHS
from gateway.errors import GatewayBusy, KeyBusy
from gateway.keys import BULKHEAD, METRICS, PRINCIPAL
from shardgate.web import Handler

OBJECTS_PREFIX = "/v1/objects/"


def request_kind(request: web.Request) -> str | None:
    """upload, download, other, or None for requests that are never limited."""
    if request.path in PUBLIC_PATHS or request.method == "OPTIONS":
        return None
    if request.method == "PUT" and request.path.startswith("/v1/uploads/"):
        return "upload"
    if request.path.startswith(OBJECTS_PREFIX):
        is_object = "/" in request.path[len(OBJECTS_PREFIX) :]
        if request.method in ("PUT", "POST"):
            return "upload"
        if request.method in ("GET", "HEAD") and is_object:
            return "download"
    return "other"


def admission_middleware() -> Middleware:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        kind = request_kind(request)
        if kind is None:
            return await handler(request)
        try:
            with request.app[BULKHEAD].enter(kind, request[PRINCIPAL].key_id):
                return await handler(request)
        except (GatewayBusy, KeyBusy) as exc:
            request.app[METRICS].admission_rejections.labels(kind, exc.code).inc()
            raise

    return middleware
