"""A raw asyncio server on loopback for the node client's unit tests: it records the bytes it
gets and answers as each test scripts it."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


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
