"""Reading small JSON request bodies the same way in every handler."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gateway.errors import InvalidArgument


async def json_object(request: web.Request, shape: str = "a JSON object") -> dict[str, Any]:
    """The body as a JSON object, or 400 InvalidArgument naming the expected `shape`."""
    try:
        body = await request.json()
    except ValueError:
        raise InvalidArgument(f"send {shape}") from None
    if not isinstance(body, dict):
        raise InvalidArgument(f"send {shape}")
    return body
