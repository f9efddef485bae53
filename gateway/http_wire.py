"""One HTTP/1.1 connection to a node: the protocol that buffers what the node sends and wakes
whoever waits on it, and the framing of one exchange over it (the request's head and body,
the answer's head). It speaks what the nodes answer: every body with a Content-Length.

A request body streams in as its source yields it, from the task that then reads the answer: a
node that answers before it has taken the whole body (an early refusal) is heard at the next
chunk, and the exchange counts as incomplete."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterable, Mapping
from typing import NamedTuple

from multidict import CIMultiDict

MAX_HEAD = 64 * 1024
READ_HIGH_WATER = 512 * 1024  # what a slow consumer lets pile up before reading pauses
_JOIN_LIMIT = 64 * 1024  # bodies smaller than this go out in one write with their head
_NO_BODY = frozenset({204, 304})


class Origin(NamedTuple):
    host: str
    port: int
    tls: bool
    prefix: str  # a path the node's URL names, before every request's own


class Broken(Exception):
    """The exchange broke after the connection was made, or the answer is not HTTP."""


class Unanswered(Broken):
    """The node closed the connection without a byte of answer."""


class Wire(asyncio.Protocol):
    """One connection: what the node sent so far, and a wake-up for whoever waits on it."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.pieces: deque[bytes] = deque()
        self.buffered = 0
        self.ended = False  # the node closed its side
        self.write_paused = False
        self.read_paused = False
        self.idle_since = 0.0
        self._waiter: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.pieces.append(data)
        self.buffered += len(data)
        if self.buffered > READ_HIGH_WATER and not self.read_paused and self.transport:
            self.read_paused = True
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool:
        self.ended = True
        self._wake()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.ended = True
        self._wake()

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def wait(self, stall: float | None) -> None:
        """Until the node sends, closes or takes what was written; TimeoutError after `stall`."""
        waiter = self._waiter = self.loop.create_future()
        timer = self.loop.call_later(stall, _expire, waiter) if stall is not None else None
        try:
            await waiter
        finally:
            self._waiter = None
            if timer is not None:
                timer.cancel()

    def take(self, most: int) -> bytes:
        """Up to `most` buffered bytes; a whole piece as it came when it fits (no copy)."""
        piece = self.pieces.popleft()
        if len(piece) > most:
            self.pieces.appendleft(piece[most:])
            piece = piece[:most]
        self.buffered -= len(piece)
        if self.read_paused and self.buffered < READ_HIGH_WATER // 4 and self.transport:
            self.read_paused = False
            self.transport.resume_reading()
        return piece

    def close(self) -> None:
        if self.transport is not None:
            self.transport.abort()
        self.ended = True


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())


def request_head(
    method: str,
    path: str,
    origin: Origin,
    headers: Mapping[str, str],
    body: bytes | AsyncIterable[bytes],
) -> tuple[bytes, bool]:
    """The request's head, and whether its body goes chunked (decided here, once: a header
    value may hold any text, framing words included)."""
    host = f"[{origin.host}]" if ":" in origin.host else origin.host
    lines = [f"{method} {origin.prefix}{path} HTTP/1.1", f"Host: {host}:{origin.port}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    declared = any(name.lower() == "content-length" for name in headers)
    chunked = not isinstance(body, bytes) and not declared
    if isinstance(body, bytes):
        if declared:
            raise ValueError(f"{method} {path}: a body of bytes declares its own length")
        lines.append(f"Content-Length: {len(body)}")
    elif chunked:
        lines.append("Transfer-Encoding: chunked")
    text = "\r\n".join(lines) + "\r\n\r\n"
    breaks = len(lines) + 1
    if text.count("\n") != breaks or text.count("\r") != breaks or "\0" in text:
        raise ValueError(f"a header of {method} {path} holds a line break or a NUL")
    return text.encode("utf-8", "surrogateescape"), chunked


async def send(
    wire: Wire,
    head: bytes,
    body: bytes | AsyncIterable[bytes],
    chunked: bool,
    stall: float | None,
) -> bool:
    """Write the request; False when the node answered (or closed) before taking all of it."""
    if isinstance(body, bytes):
        if len(body) < _JOIN_LIMIT:
            return await _write(wire, head + body, stall)
        return await _write(wire, head, stall) and await _write(wire, body, stall)
    pending = head  # held back to go out with a small first chunk: one write, not two
    async for chunk in body:
        if chunked:
            chunk = b"%x\r\n%b\r\n" % (len(chunk), chunk) if chunk else b""
        if pending and len(chunk) < _JOIN_LIMIT:
            chunk, pending = pending + chunk, b""
        for data in (pending, chunk):
            if data and not await _write(wire, data, stall):
                return False
        pending = b""
    last = pending + (b"0\r\n\r\n" if chunked else b"")
    return not last or await _write(wire, last, stall)


async def _write(wire: Wire, data: bytes, stall: float | None) -> bool:
    """Hand `data` to the transport and wait until it takes more; False, with nothing
    written, once the node has answered early or gone."""
    if wire.pieces or wire.ended or wire.transport is None:
        return False
    wire.transport.write(data)
    while wire.write_paused and not (wire.pieces or wire.ended):
        await wire.wait(stall)
    return True


async def read_head(
    wire: Wire, method: str, stall: float | None
) -> tuple[int, CIMultiDict[str], int, bool]:
    """The answer's status, headers, body length, and whether the connection may be reused."""
    heard = False
    while True:
        if wire.pieces:
            heard = True
            data = b"".join(wire.pieces) if len(wire.pieces) > 1 else wire.pieces[0]
            end = data.find(b"\r\n\r\n")
            if end >= 0:
                wire.pieces.clear()
                rest = data[end + 4 :]
                if rest:
                    wire.pieces.append(rest)
                wire.buffered = len(rest)
                return _parse_head(data[:end], method)
            if len(data) > MAX_HEAD:
                raise Broken(f"an answer's head exceeds {MAX_HEAD} bytes")
            wire.pieces = deque([data])
        if wire.ended:
            raise (Broken if heard else Unanswered)("the node closed before answering")
        await wire.wait(stall)


def _parse_head(raw: bytes, method: str) -> tuple[int, CIMultiDict[str], int, bool]:
    status_line, *lines = raw.decode("utf-8", "surrogateescape").split("\r\n")
    version, _, rest = status_line.partition(" ")
    code = rest[:3]
    if not version.startswith("HTTP/1.") or not code.isdigit():
        raise Broken(f"not an HTTP/1.x answer: {status_line[:80]!r}")
    headers: CIMultiDict[str] = CIMultiDict()
    for line in lines:
        name, colon, value = line.partition(":")
        if not colon:
            raise Broken(f"a malformed header line: {line[:80]!r}")
        headers.add(name.strip(), value.strip())
    status = int(code)
    if "chunked" in headers.get("Transfer-Encoding", "").lower():
        raise Broken("the node answered chunked; nodes always declare a Content-Length")
    if status < 200:
        raise Broken(f"an interim answer ({status}) to a request that asked for none")
    if method == "HEAD" or status in _NO_BODY:
        length = 0
    else:
        declared = headers.get("Content-Length", "")
        if not declared.isdigit():
            raise Broken(f"the answer declares no valid Content-Length: {declared[:40]!r}")
        length = int(declared)
    keep = version == "HTTP/1.1" and headers.get("Connection", "").lower() != "close"
    return status, headers, length, keep
