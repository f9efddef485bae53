"""Bearer API keys on /v1: the presented key is hashed and compared in constant time."""

from __future__ import annotations

import hmac

from aiohttp import web
from aiohttp.typedefs import Middleware

from gateway.errors import Unauthorized
from shardgate.config import GatewayConfig, hash_api_key
from shardgate.web import Handler

PUBLIC_PREFIXES = ("/healthz", "/readyz", "/metrics")


def auth_middleware(config: GatewayConfig) -> Middleware:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith(PUBLIC_PREFIXES):
            scheme, _, token = request.headers.get("Authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise Unauthorized("an API key is required: send 'Authorization: Bearer <key>'")
            if not hmac.compare_digest(hash_api_key(token.strip()), config.admin_key_sha256):
                raise Unauthorized("the API key is not valid")
        return await handler(request)

    return middleware
