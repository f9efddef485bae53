"""Every internal route demands a fresh HMAC signature made with the cluster secret."""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Middleware

from shardgate.config import NodeConfig
from shardgate.internal_api import PREFIX
from shardgate.signing import SignatureError, verify_request
from shardgate.web import Handler
from storage_node.errors import Unauthorized


def signature_middleware(config: NodeConfig) -> Middleware:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith(PREFIX):
            try:
                verify_request(
                    config.cluster_secret,
                    request.method,
                    request.raw_path,
                    request.headers,
                    max_skew=config.signature_max_skew,
                )
            except SignatureError as exc:
                raise Unauthorized(str(exc)) from None
        return await handler(request)

    return middleware
