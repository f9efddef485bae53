"""gateway.node_http against a raw asyncio server on loopback, which records the bytes it
gets and answers as each test scripts it: keep-alive, bodies both ways, early answers,
broken and stalled nodes, and reading that pauses for a slow consumer."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest

from gateway.node_http import READ_HIGH_WATER, Broken, NodeConnections, Unreachable

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
KiB, MiB = 1024, 1024 * 1024


async def read_request(reader: asyncio.StreamReader) -> tuple[str, dict[str, str], bytes]:
    """One request as a node would parse it: its first line, headers and decoded body."""
    head = (await reader.readuntil(b"\r\n\r\n")).decode()
    first, *lines = head[:-4].split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    if headers.get("transfer-encoding") == "chunked":
        body = bytearray()
        while size := int((await reader.readuntil(b"\r\n"))[:-2], 16):
            body += await reader.readexactly(size)
            await reader.readexactly(2)
        await reader.readexactly(2)
        return first, headers, bytes(body)
    return first, headers, await reader.readexactly(int(headers.get("content-length", "0")))


def answer(status: int, body: bytes = b"", extra: str = "") -> bytes:
    return f"HTTP/1.1 {status} X\r\nContent-Length: {len(body)}\r\n{extra}\r\n".encode() + body


class Server:
    """Serves each connection with `handler`; counts connections and keeps what it read."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.requests: list[tuple[str, dict[str, str], bytes]] = []

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await self.handler(reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def echo_forever(self, reader: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        """Keep-alive: answer each request with its body's sha256."""
        while True:
            request = await read_request(reader)
            self.requests.append(request)
            w.write(answer(200, hashlib.sha256(request[2]).hexdigest().encode()))


@asynccontextmanager
async def serving(handler: Handler | None = None) -> AsyncIterator[tuple[Server, str]]:
    server = Server(handler or (lambda r, w: server.echo_forever(r, w)))
    listener = await asyncio.start_server(server._serve, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    try:
        yield server, f"http://127.0.0.1:{port}"
    finally:
        listener.close()


def pool(opened: list[int] | None = None, **kwargs: float) -> NodeConnections:
    counter = opened if opened is not None else []
    return NodeConnections(connect_timeout=2.0, on_open=lambda: counter.append(1), **kwargs)


async def body_of(chunks: list[bytes]) -> AsyncIterator[bytes]:
    for chunk in chunks:
        await asyncio.sleep(0)
        yield chunk


async def test_requests_reuse_one_connection_and_send_exact_bytes() -> None:
    opened: list[int] = []
    connections = pool(opened)
    async with serving() as (server, url):
        for n in range(3):
            body = os.urandom(100 + n)
            response = await connections.request(url, "PUT", f"/o/{n}", {"X-A": "é"}, body, stall=5)
            assert response.status == 200
            assert await response.read() == hashlib.sha256(body).hexdigest().encode()
            first, headers, got = server.requests[-1]
            assert (first, headers["x-a"], got) == (f"PUT /o/{n} HTTP/1.1", "é", body)
            assert headers["content-length"] == str(len(body))
        assert (server.connections, len(opened)) == (1, 1)
    connections.close()


@pytest.mark.parametrize("declared", [True, False])
async def test_streamed_bodies_arrive_whole_with_or_without_a_length(declared: bool) -> None:
    chunks = [os.urandom(10), os.urandom(300 * KiB), b"", os.urandom(5)]
    data = b"".join(chunks)
    headers = {"Content-Length": str(len(data))} if declared else {}
    connections = pool()
    async with serving() as (server, url):
        for _ in range(2):  # the second on the same connection: the first ended cleanly
            response = await connections.request(
                url, "PUT", "/o", headers, body_of(chunks), stall=5
            )
            assert await response.read() == hashlib.sha256(data).hexdigest().encode()
        assert [r[2] for r in server.requests] == [data, data]
        assert ("transfer-encoding" in server.requests[0][1]) is not declared
        assert server.connections == 1
    connections.close()


async def test_a_large_answer_streams_in_bounded_pieces_and_keeps_the_connection() -> None:
    payload = os.urandom(3 * MiB + 7)

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await read_request(reader)
            writer.write(answer(200, payload, "ETag: e\r\n"))

    connections = pool()
    async with serving(handler) as (server, url):
        for _ in range(2):
            response = await connections.request(url, "GET", "/o", {}, stall=5)
            assert response.headers["etag"] == "e"
            pieces = [piece async for piece in response.chunks(256 * KiB)]
            assert max(map(len, pieces)) <= 256 * KiB
            assert b"".join(pieces) == payload
        assert server.connections == 1
    connections.close()


async def test_an_answer_released_unread_costs_its_connection() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await read_request(reader)
            whole = answer(200, b"x" * 100_000)
            head = whole.index(b"\r\n\r\n") + 4
            writer.write(whole[:head])
            await asyncio.sleep(0.1)  # the body comes after the client has let go
            writer.write(whole[head:])

    opened: list[int] = []
    connections = pool(opened)
    async with serving(handler) as (server, url):
        response = await connections.request(url, "GET", "/o", {}, stall=5)
        response.release()  # the rest of the body must not be read as the next answer
        response = await connections.request(url, "GET", "/o", {}, stall=5)
        assert await response.read() == b"x" * 100_000
        assert (server.connections, len(opened)) == (2, 2)
    connections.close()


async def test_a_node_refusing_early_is_heard_and_its_connection_dropped() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(answer(413, b'{"error": "too large"}'))
        await writer.drain()
        await asyncio.sleep(30)  # reads nothing more, and does not close

    sent: list[int] = []

    async def endless() -> AsyncIterator[bytes]:
        while True:
            sent.append(1)
            yield b"y" * 256 * KiB
            await asyncio.sleep(0.01)

    opened: list[int] = []
    connections = pool(opened)
    async with serving(handler) as (_, url):
        response = await asyncio.wait_for(
            connections.request(url, "PUT", "/o", {}, endless(), stall=5), 5
        )
        assert (response.status, await response.read()) == (413, b'{"error": "too large"}')
        await asyncio.wait_for(connections.request(url, "PUT", "/o", {}, b"", stall=0.5), 5)
    connections.close()
    assert len(opened) == 2, "the refused connection was reused"
    assert len(sent) < 400, f"{len(sent)} chunks sent after the answer"


async def test_no_node_listening_is_unreachable() -> None:
    async with serving() as (_, url):
        pass
    with pytest.raises(Unreachable, match="cannot connect"):
        await pool().request(url, "GET", "/o", {}, stall=5)


async def test_a_body_cut_short_is_broken() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(answer(200, b"z" * 1000)[:-400])
        await writer.drain()

    async with serving(handler) as (_, url):
        response = await pool().request(url, "GET", "/o", {}, stall=5)
        with pytest.raises(Broken, match="400 bytes of the body unsent"):
            await response.read()


@pytest.mark.parametrize(
    "reply",
    [b"", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", b"SSH-2.0\r\n\r\n"],
    ids=["closed", "chunked", "not-http"],
)
async def test_answers_the_nodes_never_give_are_broken(reply: bytes) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(reply)
        await writer.drain()

    async with serving(handler) as (_, url):
        with pytest.raises(Broken):
            await pool().request(url, "GET", "/o", {}, stall=5)


async def test_a_silent_node_times_out_after_the_stall_limit() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await asyncio.sleep(30)

    loop = asyncio.get_running_loop()
    async with serving(handler) as (_, url):
        started = loop.time()
        with pytest.raises(TimeoutError):
            await pool().request(url, "GET", "/o", {}, stall=0.3)
        assert 0.25 < loop.time() - started < 3


async def test_a_header_with_a_line_break_is_refused_before_anything_is_sent() -> None:
    async with serving() as (server, url):
        with pytest.raises(ValueError, match="line break"):
            await pool().request(url, "GET", "/o", {"X-A": "a\r\nX-Evil: 1"}, stall=5)
        await asyncio.sleep(0.05)
        assert server.requests == []


async def test_connections_the_node_closed_or_left_idle_too_long_are_not_reused() -> None:
    async def one_each(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(answer(200, b"ok"))
        await writer.drain()  # then closes: the pooled connection is dead

    opened: list[int] = []
    connections = pool(opened)
    async with serving(one_each) as (_, url):
        for _ in range(3):
            response = await connections.request(url, "GET", "/o", {}, stall=5)
            assert await response.read() == b"ok"
            await asyncio.sleep(0.05)
    assert len(opened) == 3

    opened.clear()
    connections = pool(opened, idle_seconds=0.1)
    async with serving() as (_, url):
        await (await connections.request(url, "GET", "/o", {}, stall=5)).read()
        await asyncio.sleep(0.2)
        await (await connections.request(url, "GET", "/o", {}, stall=5)).read()
    assert len(opened) == 2
    connections.close()


async def test_reading_pauses_while_the_consumer_is_slow() -> None:
    payload = os.urandom(16 * MiB)

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(answer(200, payload))
        await writer.drain()

    async with serving(handler) as (_, url):
        response = await pool().request(url, "GET", "/o", {}, stall=5)
        await asyncio.sleep(0.3)  # the node could send it all by now; memory must not hold it
        held = response._wire.buffered if response._wire else 0
        assert held <= READ_HIGH_WATER + 256 * KiB, f"{held} bytes buffered"
        assert b"".join([piece async for piece in response.chunks(MiB)]) == payload
