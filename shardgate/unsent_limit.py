"""How much of a version a node lets wait unsent in the kernel for one reader
(TCP_NOTSENT_LOWAT), so sendfile tops the socket up as the reader takes bytes instead of
queueing megabytes of page-cache pages ahead of it."""

from __future__ import annotations

import asyncio
import socket

# Python defines the option on Linux and macOS only; elsewhere the kernel's default stands.
_NOTSENT_LOWAT: int | None = getattr(socket, "TCP_NOTSENT_LOWAT", None)
_TCP_FAMILIES = (socket.AF_INET, socket.AF_INET6)


def limit_unsent(transport: asyncio.BaseTransport, limit: int) -> bool:
    """Report the transport's socket writable only while less than `limit` bytes wait unsent,
    or, for 0, as the kernel's default does (a kept-alive connection keeps what it was set to);
    False where that cannot be asked (not TCP, no such option)."""
    sock = transport.get_extra_info("socket")
    if sock is None or _NOTSENT_LOWAT is None or sock.family not in _TCP_FAMILIES:
        return False
    try:
        sock.setsockopt(socket.IPPROTO_TCP, _NOTSENT_LOWAT, limit)
    except OSError:
        return False
    return True
