"""aiohttp pieces both services share: JSON errors, request ids, request metrics, and serving
on a bound port with an access log.

Every process prints `<name> listening on <url>` on stdout once it accepts connections, so
launchers and tests can start it on port 0 and read the address instead of guessing one.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import signal
import socket
import time
from collections.abc import Awaitable, Callable
from http import HTTPStatus

from aiohttp import web
from aiohttp.typedefs import Middleware
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from shardgate import request_id
from shardgate.access_log import LOGGER_NAME, REQUEST_ID_KEY, AccessLogger, route_template
from shardgate.errors import ShardgateError
from shardgate.heap import tune_allocator
from shardgate.open_files import raise_open_files_limit

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
REGISTRY_KEY = web.AppKey("registry", CollectorRegistry)
PARENT_ENV = "SHARDGATE_PARENT_PID"  # set by launchers: stop when that process is gone
CORS_ORIGIN = web.RequestKey("cors_origin", str)
CORS_EXPOSE_HEADERS = (
    "ETag, Last-Modified, Content-Length, Content-Range, Content-Disposition, "
    "X-Shardgate-Version, Retry-After, X-Request-Id"
)

_HTTP_CODES = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    411: "MissingContentLength",
    413: "EntityTooLarge",
    416: "InvalidRange",
}


def error_response(exc: ShardgateError) -> web.Response:
    return web.json_response(exc.body(), status=exc.status, headers=exc.headers)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Render every failure as DESIGN.md's JSON error body, whoever raised it."""
    try:
        return await handler(request)
    except ShardgateError as exc:
        return error_response(exc)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = _HTTP_CODES.get(exc.status, HTTPStatus(exc.status).phrase.replace(" ", ""))
        body = {"error": {"code": code, "message": exc.reason}}
        headers = {k: v for k, v in exc.headers.items() if k.lower() in {"allow", "retry-after"}}
        return web.json_response(body, status=exc.status, headers=headers)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        # The client went away mid-answer: routine, and nothing can be sent back. aiohttp drops an
        # answer to a closed connection quietly; raising would log a traceback instead. Outgoing
        # calls wrap their own socket errors (ClientOSError), so these are the client's socket.
        if isinstance(exc, ConnectionError) and _client_gone(request, exc):
            log.info("client went away during %s %s: %r", request.method, request.path, exc)
            return web.Response(status=499, reason="Client Closed Request")
        log.exception("unhandled error on %s %s", request.method, request.path)
        body = {"error": {"code": "InternalError", "message": "internal error; see server log"}}
        return web.json_response(body, status=500)


def _client_gone(request: web.Request, exc: ConnectionError) -> bool:
    """A reset or broken pipe (sendfile reports the socket's own error), or aiohttp's plain
    "Connection lost" once the transport is gone or closing."""
    if isinstance(exc, ConnectionResetError | BrokenPipeError | ConnectionAbortedError):
        return True
    if exc.errno == errno.ENOTCONN:
        return True
    transport = request.transport
    return transport is None or transport.is_closing()


@web.middleware
async def request_id_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Give the request its id (the client's if well formed) for logs, answers and node calls."""
    rid = request_id.accept(request.headers.get(request_id.HEADER))
    request[REQUEST_ID_KEY] = rid
    token = request_id.bind(rid)
    try:
        return await handler(request)
    finally:
        # aiohttp serves a keep-alive connection's requests in one task: never leak an id.
        request_id.unbind(token)


async def stamp_request_id(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: every answer, streamed or error, carries the request's id."""
    rid = request.get(REQUEST_ID_KEY)
    if rid is not None:
        response.headers[request_id.HEADER] = rid


def metrics_middleware(registry: CollectorRegistry) -> Middleware:
    """Count requests and time them by route template (never by raw path, to bound label sets)."""
    requests = Counter(
        "shardgate_http_requests",
        "HTTP requests answered, by route template, method and status.",
        ["route", "method", "status"],
        registry=registry,
    )
    latency = Histogram(
        "shardgate_http_request_duration_seconds",
        "Time to answer (headers and body), by route template and method.",
        ["route", "method"],
        registry=registry,
        buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
    )
    in_flight = Gauge(
        "shardgate_http_requests_in_flight",
        "Requests being answered now, by route template.",
        ["route"],
        registry=registry,
    )

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        template = route_template(request)
        started = time.perf_counter()
        status = 500
        active = in_flight.labels(template)
        active.inc()
        try:
            response = await handler(request)
            status = response.status
            return response
        finally:
            active.dec()
            latency.labels(template, request.method).observe(time.perf_counter() - started)
            requests.labels(template, request.method, str(status)).inc()

    return middleware


def base_middlewares(registry: CollectorRegistry) -> list[Middleware]:
    """What every shardgate app runs first, outermost first: request id, metrics, JSON errors."""
    return [request_id_middleware, metrics_middleware(registry), error_middleware]


def stamp_responses(app: web.Application) -> None:
    """Every answer, streamed or error, gets the request id and, for admitted origins, CORS."""
    app.on_response_prepare.append(add_cors_headers)
    app.on_response_prepare.append(stamp_request_id)


def origin_allowed(origin: str, allowed: tuple[str, ...]) -> bool:
    return "*" in allowed or origin in allowed


def preflight_headers(origin: str, methods: tuple[str, ...], requested: str) -> dict[str, str]:
    """The answer to an admitted CORS preflight (the caller has checked origin and method)."""
    headers = {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Allow-Methods": ", ".join(methods),
        "Access-Control-Max-Age": "600",
        "Vary": "Origin, Access-Control-Request-Method, Access-Control-Request-Headers",
    }
    if requested:
        headers["Access-Control-Allow-Headers"] = requested
    return headers


async def add_cors_headers(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: stamp every answer (error or stream alike) to an admitted origin."""
    origin = request.get(CORS_ORIGIN)
    if origin is not None:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Expose-Headers"] = CORS_EXPOSE_HEADERS
        response.headers["Vary"] = "Origin"


async def metrics_handler(request: web.Request) -> web.Response:
    body = generate_latest(request.app[REGISTRY_KEY])
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def _watch_parent(stop: asyncio.Event) -> None:
    """A service started by a launcher (shardgate dev, the tests) stops when the launcher dies,
    even by SIGKILL, instead of running on orphaned; a service started by hand is unaffected."""
    parent = os.environ.get(PARENT_ENV)
    if not parent:
        return
    while os.getppid() == int(parent):  # noqa: ASYNC110 - no event exists for "parent died"
        await asyncio.sleep(1.0)
    log.warning("launcher %s is gone; stopping", parent)
    stop.set()


def run_app(
    app: web.Application, host: str, port: int, name: str, *, access_log: bool = True
) -> None:
    """Serve until SIGINT or SIGTERM, announcing the bound URL on stdout; first the soft limit
    on open files is raised to the hard one (shardgate.open_files) and glibc's allocator is set
    to keep freed chunks (shardgate.heap)."""
    raise_open_files_limit()
    tune_allocator()
    asyncio.run(_serve(app, host, port, name, access_log))


async def _serve(app: web.Application, host: str, port: int, name: str, access_log: bool) -> None:
    runner = web.AppRunner(
        app,
        handle_signals=False,
        access_log_class=AccessLogger,
        access_log=logging.getLogger(LOGGER_NAME) if access_log else None,
    )
    await runner.setup()
    # create_server sets SO_REUSEADDR, so a restarted process can take its old port back at once.
    sock = socket.create_server((host, port))
    site = web.SockSite(runner, sock)
    await site.start()
    bound = sock.getsockname()[1]
    print(f"{name} listening on http://{host}:{bound}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    watch = asyncio.create_task(_watch_parent(stop))
    try:
        await stop.wait()
    finally:
        watch.cancel()
        log.info("%s stopping", name)
        await runner.cleanup()
