"""The error middleware: a client gone mid-answer is routine (499, INFO), other failures are 500s
with a traceback in the log."""

from __future__ import annotations

import errno
import json
import logging
from unittest import mock

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from shardgate.web import error_middleware


def _request(closing: bool | None) -> web.Request:
    """None: the transport is already gone, as aiohttp leaves it when the client hangs up."""
    transport = mock.Mock()
    transport.is_closing.return_value = closing
    request = make_mocked_request("GET", "/objects/x", transport=transport)
    if closing is None:
        request.protocol.transport = None
    return request


def _raising(exc: BaseException) -> web.RequestHandler:
    async def handler(request: web.Request) -> web.StreamResponse:
        raise exc

    return handler


@pytest.mark.parametrize(
    ("exc", "closing"),
    [
        (ConnectionError("Connection lost"), True),  # aiohttp's drain() once the client is gone
        (ConnectionError("Connection lost"), None),
        (ConnectionResetError("reset by peer"), False),
        (BrokenPipeError(errno.EPIPE, "broken pipe"), False),  # sendfile's own socket error
        (ConnectionError(errno.ENOTCONN, "socket is not connected"), False),
    ],
)
async def test_a_client_gone_mid_answer_is_a_499_logged_as_info(
    exc: BaseException, closing: bool | None, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="shardgate.web")
    response = await error_middleware(_request(closing), _raising(exc))
    assert response.status == 499
    assert [r.levelno for r in caplog.records] == [logging.INFO]
    assert "client went away" in caplog.records[0].getMessage()


@pytest.mark.parametrize(
    "exc", [ConnectionError("our own connection failed"), RuntimeError("a bug")]
)
async def test_other_failures_are_a_500_with_a_traceback(
    exc: BaseException, caplog: pytest.LogCaptureFixture
) -> None:
    response = await error_middleware(_request(closing=False), _raising(exc))
    assert isinstance(response, web.Response) and response.body is not None
    assert response.status == 500
    assert json.loads(bytes(response.body))["error"]["code"] == "InternalError"
    (record,) = caplog.records
    assert record.levelno == logging.ERROR and record.exc_info is not None
