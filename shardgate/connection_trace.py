"""A client session's trace that counts the connections it opens: a rate near the request
rate means keep-alive is failing, and every new connection costs a handshake on both ends."""

from __future__ import annotations

import aiohttp
from prometheus_client import Counter


def counting_connections(counter: Counter) -> aiohttp.TraceConfig:
    trace = aiohttp.TraceConfig()

    async def opened(*_: object) -> None:
        counter.inc()

    trace.on_connection_create_end.append(opened)
    return trace
