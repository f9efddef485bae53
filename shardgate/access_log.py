"""Access-log lines: one per answered request, written once the response has been sent, with
the route template (never the raw path, which holds object keys), status, time, bytes and id."""

from __future__ import annotations

import logging

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.web_request import BaseRequest

from shardgate import request_id

LOGGER_NAME = "shardgate.access"
REQUEST_ID_KEY = web.RequestKey("request_id", str)
# Probes and scrapes arrive every few seconds from every prober; at INFO they would bury the
# requests people look for, so their successful answers are logged at DEBUG.
QUIET_ROUTES = frozenset({"/healthz", "/readyz", "/metrics"})


def route_template(request: BaseRequest) -> str:
    """The matched route's template, or "unmatched" (also for requests aiohttp refused early)."""
    match_info = getattr(request, "match_info", None)
    route = match_info.route.resource if match_info is not None else None
    return route.canonical if route is not None else "unmatched"


def _body_bytes(response: web.StreamResponse) -> int:
    """The body's size as announced; for a body streamed without one, what was written (which
    then includes headers and chunk framing, the only count aiohttp keeps)."""
    if response.content_length is not None:
        return response.content_length
    return response.body_length


class AccessLogger(AbstractAccessLogger):
    """Hands aiohttp's per-request callback to the logging setup (text or JSON lines)."""

    def log(self, request: BaseRequest, response: web.StreamResponse, time: float) -> None:
        rid = request.get(REQUEST_ID_KEY) or response.headers.get(request_id.HEADER, "-")
        fields = {
            "method": request.method,
            "route": route_template(request),
            "status": response.status,
            "duration_s": round(time, 6),
            "bytes_in": request.content.total_bytes,
            "bytes_out": _body_bytes(response),
            "request_id": rid,
        }
        quiet = fields["route"] in QUIET_ROUTES and response.status < 400
        self.logger.log(
            logging.DEBUG if quiet else logging.INFO,
            "%s %s %d %.3fs in=%d out=%d",
            fields["method"],
            fields["route"],
            fields["status"],
            time,
            fields["bytes_in"],
            fields["bytes_out"],
            extra={"access": fields, "request_id": rid},
        )

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)
