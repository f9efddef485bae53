"""TCP_NOTSENT_LOWAT on the sockets a node sends versions down: set where it can be, and
nothing asked of a socket that is not TCP."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from shardgate.unsent_limit import limit_unsent


@asynccontextmanager
async def _connected(unix_path: Path | None = None) -> AsyncIterator[asyncio.Transport]:
    """A client transport connected to a server that only listens."""
    loop = asyncio.get_running_loop()
    if unix_path is None:
        server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        transport, _ = await loop.create_connection(asyncio.Protocol, "127.0.0.1", port)
    else:
        server = await asyncio.start_unix_server(lambda r, w: None, unix_path)
        transport, _ = await loop.create_unix_connection(asyncio.Protocol, str(unix_path))
    try:
        yield transport
    finally:
        transport.close()
        server.close()
        await server.wait_closed()


@pytest.mark.skipif(not hasattr(socket, "TCP_NOTSENT_LOWAT"), reason="no TCP_NOTSENT_LOWAT")
async def test_a_tcp_socket_gets_the_limit() -> None:
    async with _connected() as transport:
        sock = transport.get_extra_info("socket")
        before = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NOTSENT_LOWAT)
        assert before != 65536
        assert limit_unsent(transport, 65536)
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NOTSENT_LOWAT) == 65536


@pytest.mark.skipif(not hasattr(socket, "TCP_NOTSENT_LOWAT"), reason="no TCP_NOTSENT_LOWAT")
async def test_a_limit_of_zero_restores_the_kernel_default() -> None:
    """0 is the kernel's "use net.ipv4.tcp_notsent_lowat": what a fresh socket reports."""
    async with _connected() as transport:
        sock = transport.get_extra_info("socket")
        before = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NOTSENT_LOWAT)
        assert limit_unsent(transport, 65536)
        assert limit_unsent(transport, 0)
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NOTSENT_LOWAT) == before == 0


async def test_a_unix_socket_is_left_alone(tmp_path: Path) -> None:
    async with _connected(tmp_path / "s") as transport:
        assert not limit_unsent(transport, 65536)
