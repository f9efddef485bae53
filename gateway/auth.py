"""Bearer API keys: a present key must be valid (401); an absent one makes the caller anonymous,
which only public-read buckets admit. Rights are checked by the handlers, per bucket."""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Middleware

from gateway.access import ANONYMOUS
from gateway.errors import Unauthorized
from gateway.keys import API_KEYS, PRINCIPAL
from shardgate.web import Handler

PUBLIC_PATHS = ("/healthz", "/readyz", "/metrics", "/v1/openapi.yaml")


def auth_middleware() -> Middleware:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        request[PRINCIPAL] = ANONYMOUS
        if request.path in PUBLIC_PATHS or request.method == "OPTIONS":
            return await handler(request)
        header = request.headers.get("Authorization")
        if header is not None:
            scheme, _, token = header.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise Unauthorized("send the API key as 'Authorization: Bearer <key>'")
            request[PRINCIPAL] = await request.app[API_KEYS].authenticate(token.strip())
        return await handler(request)

    return middleware
