"""Request ids: one per client request, accepted from the client when well formed, carried in a
context variable so that log lines and every internal call made on the request's behalf name it."""

from __future__ import annotations

import re
import secrets
from contextvars import ContextVar, Token

HEADER = "X-Request-Id"
MAX_LENGTH = 128
# Bounded and free of spaces, quotes and control characters, so a client's id can go into log
# lines and headers as it came; anything else is replaced rather than refused.
_WELL_FORMED = re.compile(rf"[A-Za-z0-9._:=+/-]{{1,{MAX_LENGTH}}}")
_CURRENT: ContextVar[str | None] = ContextVar("shardgate_request_id", default=None)


def accept(offered: str | None) -> str:
    """The client's id if it is well formed, else a new random one."""
    if offered is not None and _WELL_FORMED.fullmatch(offered):
        return offered
    return secrets.token_hex(16)


def current() -> str | None:
    """The id of the request being served in this context, if any."""
    return _CURRENT.get()


def bind(request_id: str | None) -> Token[str | None]:
    """Make `request_id` current; returns the token `unbind` needs."""
    return _CURRENT.set(request_id)


def unbind(token: Token[str | None]) -> None:
    _CURRENT.reset(token)


def outgoing_headers() -> dict[str, str]:
    """The header an internal call carries so the node logs the same id."""
    request_id = _CURRENT.get()
    return {HEADER: request_id} if request_id else {}
