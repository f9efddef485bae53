"""Log lines in both modes name the request id; access lines carry their fields (as JSON keys in
JSON mode), and probes that succeed are logged below INFO."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from shardgate.access_log import LOGGER_NAME, AccessLogger
from shardgate.logs import setup_logging
from shardgate.web import request_id_middleware, stamp_request_id


@pytest.fixture(autouse=True)
def _restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


async def _handler(request: web.Request) -> web.Response:
    logging.getLogger("gateway.test").warning("inside a request")
    return web.Response(body=b"12345", status=int(request.query.get("status", "200")))


async def _lines(capsys: pytest.CaptureFixture[str], count: int) -> list[str]:
    """The next `count` log lines: the access line is written just after the answer is sent."""
    text = ""
    for _ in range(500):
        text += capsys.readouterr().err
        if len(text.splitlines()) >= count:
            break
        await asyncio.sleep(0.01)
    return text.splitlines()


@pytest.fixture
async def client(aiohttp_client: Any) -> Any:
    """An app with the shared request-id middleware, served with the access logger."""
    app = web.Application(middlewares=[request_id_middleware])
    app.on_response_prepare.append(stamp_request_id)
    app.router.add_get("/v1/objects/{bucket}/{key:.+}", _handler)
    app.router.add_get("/healthz", _handler)
    server = TestServer(app)
    # TestServer's constructor drops runner settings; start_server hands them to AppRunner.
    await server.start_server(
        access_log_class=AccessLogger, access_log=logging.getLogger(LOGGER_NAME)
    )
    return await aiohttp_client(server)


async def test_json_lines_carry_request_id_and_access_fields(
    client: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    setup_logging("INFO", json_lines=True, name="gateway")
    resp = await client.get(
        "/v1/objects/bkt/secret/key.txt?status=404", headers={"X-Request-Id": "rid-7"}
    )
    assert resp.headers["X-Request-Id"] == "rid-7"
    inside, access = (json.loads(line) for line in await _lines(capsys, 2))
    assert inside["request_id"] == "rid-7" and inside["service"] == "gateway"
    assert access["request_id"] == "rid-7"
    assert access["route"] == "/v1/objects/{bucket}/{key}"
    assert (access["method"], access["status"], access["bytes_out"]) == ("GET", 404, 5)
    assert access["duration_s"] >= 0
    assert "secret" not in json.dumps(access)


async def test_text_lines_end_with_the_request_id(
    client: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    setup_logging("INFO", json_lines=False, name="node/n1")
    resp = await client.get("/v1/objects/bkt/k")
    rid = resp.headers["X-Request-Id"]
    inside, access = await _lines(capsys, 2)
    assert inside.endswith(f"gateway.test: inside a request rid={rid}")
    assert re.search(
        rf"node/n1 INFO shardgate.access: GET /v1/objects/\{{bucket\}}/\{{key\}} 200 "
        rf"\d+\.\d{{3}}s in=0 out=5 rid={rid}$",
        access,
    )


async def test_successful_probes_are_logged_at_debug(
    client: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    setup_logging("INFO", json_lines=False, name="gateway")
    await client.get("/healthz")
    await client.get("/healthz?status=503")
    lines = await _lines(capsys, 3)
    assert [line for line in lines if "shardgate.access" in line] == lines[2:]
    assert "GET /healthz 503" in lines[2]
