"""The OpenAPI description of this API, served as written in gateway/openapi.yaml."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

SPEC = Path(__file__).resolve().parents[1] / "openapi.yaml"


async def openapi(request: web.Request) -> web.FileResponse:
    return web.FileResponse(SPEC, headers={"Content-Type": "application/yaml"})
