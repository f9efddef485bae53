"""gateway.node_http and gateway.http_wire against a raw asyncio server on loopback, which
records the bytes it gets and answers as each test scripts it: keep-alive, bodies both ways,
early answers, broken and stalled nodes, and reading that pauses for a slow consumer."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator

import pytest
from raw_node import answer, read_request, serving

from gateway.http_wire import READ_HIGH_WATER, Broken
from gateway.node_http import NodeConnections, Unreachable

KiB, MiB = 1024, 1024 * 1024


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
    assert len(sent) <= 5, f"{len(sent)} chunks sent: the answer was not heard at once"


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
    [
        b"",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\n",
        b"SSH-2.0\r\n\r\n",
    ],
    ids=["closed", "chunked", "negative-length", "not-http"],
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


async def test_framing_words_in_a_header_value_do_not_change_the_framing() -> None:
    data = os.urandom(70 * KiB)
    headers = {"X-Meta": "Transfer-Encoding: chunked", "Content-Length": str(len(data))}
    connections = pool()
    async with serving() as (server, url):
        for _ in range(2):
            response = await connections.request(
                url, "PUT", "/o", headers, body_of([data]), stall=5
            )
            assert await response.read() == hashlib.sha256(data).hexdigest().encode()
        assert [r[2] for r in server.requests] == [data, data]
        assert server.connections == 1
    connections.close()


@pytest.mark.parametrize(
    ("headers", "body"),
    [({"X-A": "a\rb"}, b""), ({"X-A": "a\0b"}, b""), ({"content-length": "3"}, b"abc")],
    ids=["carriage-return", "nul", "bytes-with-a-length"],
)
async def test_heads_that_would_frame_wrongly_are_refused(
    headers: dict[str, str], body: bytes
) -> None:
    async with serving() as (server, url):
        with pytest.raises(ValueError):
            await pool().request(url, "PUT", "/o", headers, body, stall=5)
        await asyncio.sleep(0.05)
        assert server.connections == 0


@pytest.mark.parametrize(("method", "retried"), [("GET", True), ("POST", False)])
async def test_a_kept_connection_closed_as_it_is_taken_is_retried_if_idempotent(
    method: str, retried: bool
) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(answer(200, b"ok"))
        if server.connections == 1:
            await reader.readuntil(b"\r\n\r\n")  # the next request arrives as the node closes
            return
        while True:
            await read_request(reader)
            writer.write(answer(200, b"ok"))

    opened: list[int] = []
    connections = pool(opened)
    async with serving(handler) as (server, url):
        assert await (await connections.request(url, method, "/o", {}, stall=5)).read() == b"ok"
        if retried:
            response = await connections.request(url, method, "/o", {}, stall=5)
            assert await response.read() == b"ok"
        else:
            with pytest.raises(Broken, match="before answering"):
                await connections.request(url, method, "/o", {}, stall=5)
    assert len(opened) == (2 if retried else 1)
    connections.close()


async def test_a_closed_pool_keeps_no_connection_that_ends_after() -> None:
    opened: list[int] = []
    connections = pool(opened)
    async with serving() as (server, url):
        response = await connections.request(url, "GET", "/o", {}, stall=5)
        connections.close()
        await response.read()
        await (await connections.request(url, "GET", "/o", {}, stall=5)).read()
        assert (len(opened), server.connections) == (2, 2)


async def test_a_node_that_answered_part_of_a_head_and_closed_is_not_asked_again() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(answer(200, b"ok"))
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-")  # it may have done the work: no retry

    opened: list[int] = []
    connections = pool(opened)
    async with serving(handler) as (_, url):
        assert await (await connections.request(url, "GET", "/o", {}, stall=5)).read() == b"ok"
        with pytest.raises(Broken, match="before answering"):
            await connections.request(url, "GET", "/o", {}, stall=5)
    assert len(opened) == 1
    connections.close()


async def test_an_answer_dropped_unread_closes_its_connection() -> None:
    closed = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(answer(200, b"x" * MiB)[: 64 * KiB])
        if await reader.read() == b"":
            closed.set()

    async with serving(handler) as (_, url):
        response = await pool().request(url, "GET", "/o", {}, stall=5)
        assert response.status == 200
        del response
        await asyncio.wait_for(closed.wait(), 2)
