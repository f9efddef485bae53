"""Keep-alive HTTP/1.1 exchanges with the storage nodes, on a protocol of its own rather than
aiohttp's client, which cost three times the CPU per small request (bench/ANALYSIS.md, item 13):
a pool of connections per node, and answers read as they arrive (the framing of one exchange
is gateway.http_wire's). A connection is reused only after its whole request went out and its
whole answer was read.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable, Mapping
from urllib.parse import urlsplit

from multidict import CIMultiDict, CIMultiDictProxy

from gateway.http_wire import (
    MAX_HEAD,
    Broken,
    Origin,
    Unanswered,
    Wire,
    read_head,
    request_head,
    send,
)


class Unreachable(Exception):
    """No connection could be made: nothing was sent."""


class NodeResponse:
    """A node's answer: status and headers now, the body as it arrives."""

    def __init__(
        self,
        pool: NodeConnections,
        origin: Origin,
        wire: Wire,
        status: int,
        headers: CIMultiDict[str],
        length: int,
        reusable: bool,
        stall: float | None,
    ) -> None:
        self.status = status
        self.headers = CIMultiDictProxy(headers)
        self._pool = pool
        self._origin = origin
        self._wire: Wire | None = wire
        self._left = length
        self._reusable = reusable
        self._stall = stall

    async def chunks(self, size: int) -> AsyncIterator[bytes]:
        """The body in pieces of at most `size` bytes; Broken if it ends short."""
        while self._left > 0:
            wire = self._wire
            if wire is None:
                raise Broken("the answer was released before its body was read")
            if not wire.pieces:
                if wire.ended:
                    raise Broken(f"the node closed with {self._left} bytes of the body unsent")
                await wire.wait(self._stall)
                continue
            piece = wire.take(min(size, self._left))
            self._left -= len(piece)
            if self._left == 0:
                self.release()
            yield piece

    def __del__(self) -> None:
        # A caller that drops an answer unread must not leave its socket open; the collector
        # may run on another thread, and transports belong to the loop's.
        wire = self._wire
        if wire is not None and not wire.loop.is_closed():
            wire.loop.call_soon_threadsafe(wire.close)

    async def read(self) -> bytes:
        return b"".join([piece async for piece in self.chunks(MAX_HEAD)])

    def release(self) -> None:
        """Hand the connection back if the whole body was read, else close it."""
        wire, self._wire = self._wire, None
        if wire is None:
            return
        if self._left == 0 and self._reusable and not wire.ended and not wire.pieces:
            self._pool.keep(self._origin, wire)
        else:
            wire.close()


class NodeConnections:
    """A pool of keep-alive connections per node; a connection idle longer than `idle_seconds`
    is closed rather than reused, well before a node would close it from its side."""

    def __init__(
        self,
        *,
        connect_timeout: float,
        on_open: Callable[[], None],
        idle_seconds: float = 15.0,
        idle_limit: int = 64,
    ) -> None:
        self._connect_timeout = connect_timeout
        self._on_open = on_open
        self._idle_seconds = idle_seconds
        self._idle_limit = idle_limit
        self._idle: dict[Origin, list[Wire]] = {}
        self._origins: dict[str, Origin] = {}
        self._tls: ssl.SSLContext | None = None
        self._closed = False

    async def request(
        self,
        base_url: str,
        method: str,
        path: str,
        headers: Mapping[str, str],
        body: bytes | AsyncIterable[bytes] = b"",
        *,
        stall: float | None,
    ) -> NodeResponse:
        """Send one request and read the answer's head. An iterable body goes chunked unless
        `headers` declare its Content-Length; `stall` bounds each wait on the node."""
        origin = self._origin(base_url)
        head, chunked = request_head(method, path, origin, headers, body)
        for fresh in (False, True):
            wire, reused = await self._connection(origin, fresh)
            try:
                complete = await send(wire, head, body, chunked, stall)
                status, answer, length, keep = await read_head(wire, method, stall)
                break
            except Unanswered:
                wire.close()
                # A kept connection the node closed as it was taken: an idempotent request with
                # a body of bytes goes again on a new one, as aiohttp's client retries it.
                if not (reused and method != "POST" and isinstance(body, bytes)):
                    raise
            except BaseException:
                wire.close()
                raise
        reusable = complete and keep
        return NodeResponse(self, origin, wire, status, answer, length, reusable, stall)

    def keep(self, origin: Origin, wire: Wire) -> None:
        idle = self._idle.setdefault(origin, [])
        now = time.monotonic()
        while idle and (idle[0].ended or idle[0].idle_since < now - self._idle_seconds):
            idle.pop(0).close()  # the oldest first: a busy pool never reaches them otherwise
        if self._closed or len(idle) >= self._idle_limit:
            wire.close()
            return
        wire.idle_since = now
        idle.append(wire)

    def close(self) -> None:
        """Close the idle connections, and each one in use as its exchange ends."""
        self._closed = True
        for idle in self._idle.values():
            for wire in idle:
                wire.close()
        self._idle.clear()

    def _origin(self, base_url: str) -> Origin:
        origin = self._origins.get(base_url)
        if origin is None:
            parts = urlsplit(base_url)
            tls = parts.scheme == "https"
            port = parts.port or (443 if tls else 80)
            origin = Origin(parts.hostname or "", port, tls, parts.path.rstrip("/"))
            self._origins[base_url] = origin
        return origin

    async def _connection(self, origin: Origin, fresh: bool = False) -> tuple[Wire, bool]:
        """A connection to `origin` (a new one if `fresh`), and whether it was kept from an
        earlier exchange."""
        idle = None if fresh else self._idle.get(origin)
        stale = time.monotonic() - self._idle_seconds
        while idle:
            wire = idle.pop()
            if not wire.ended and not wire.pieces and wire.idle_since > stale:
                return wire, True
            wire.close()
        host, port, tls, _ = origin
        if tls and self._tls is None:
            self._tls = ssl.create_default_context()
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self._connect_timeout):
                _, wire = await loop.create_connection(
                    lambda: Wire(loop), host, port, ssl=self._tls if tls else None
                )
        except (OSError, TimeoutError) as exc:
            raise Unreachable(f"cannot connect to {host}:{port}: {exc!r}") from exc
        self._on_open()
        return wire, False
