"""The one load client every target is driven with: PUT, then GET, then DELETE `count` objects
of `size` bytes with `concurrency` requests in flight, each phase bounded in time.

In correctness mode every GET body is hashed and compared with what was sent.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import aiohttp

from bench.payload import Payload
from bench.stats import PhaseResult, summarize
from bench.workloads import Workload

PHASES = ("put", "get", "delete")
_MAX_ERROR_SAMPLES = 5


class Endpoint(Protocol):
    """Where objects live on one target, and the headers every request to it carries."""

    @property
    def headers(self) -> Mapping[str, str]: ...

    def object_url(self, key: str) -> str: ...


class BenchError(Exception):
    """A request that completed but answered wrongly (status, length or hash)."""


@dataclass(frozen=True)
class ClientOptions:
    verify: bool = False
    phase_deadline_s: float = 600.0  # a phase stops starting requests after this long
    request_timeout_s: float = 300.0  # no single request may take longer


async def _run_phase(
    count: int, concurrency: int, op: Callable[[int], Awaitable[int]], deadline_s: float
) -> PhaseResult:
    latencies: list[float] = []
    samples: list[str] = []
    errors = 0
    moved = 0
    indexes = iter(range(count))
    stop_at = time.monotonic() + deadline_s

    async def worker() -> None:
        nonlocal errors, moved
        for index in indexes:
            if time.monotonic() > stop_at:
                errors += 1
                if len(samples) < _MAX_ERROR_SAMPLES:
                    samples.append(f"object {index} not attempted: phase deadline passed")
                continue
            started = time.perf_counter()
            try:
                done = await op(index)  # not `moved += await ...`: that reads `moved` first
            except (aiohttp.ClientError, TimeoutError, BenchError) as exc:
                errors += 1
                if len(samples) < _MAX_ERROR_SAMPLES:
                    samples.append(f"object {index}: {exc!r}"[:300])
                continue
            latencies.append(time.perf_counter() - started)
            moved += done

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return summarize(latencies, moved, time.perf_counter() - started, errors, samples)


class LoadClient:
    """Runs one workload against one endpoint; keys are `<prefix>/<index>`."""

    def __init__(self, endpoint: Endpoint, payload: Payload, options: ClientOptions) -> None:
        self._endpoint = endpoint
        self._payload = payload
        self._options = options

    def _url(self, prefix: str, index: int) -> str:
        return self._endpoint.object_url(f"{prefix}/{index:06d}")

    async def run(
        self, workload: Workload, prefix: str, phases: Sequence[str] = PHASES
    ) -> dict[str, PhaseResult]:
        connector = aiohttp.TCPConnector(limit=workload.concurrency, limit_per_host=0)
        timeout = aiohttp.ClientTimeout(
            total=self._options.request_timeout_s, sock_connect=10, sock_read=120
        )
        async with aiohttp.ClientSession(
            connector=connector, timeout=timeout, auto_decompress=False
        ) as session:
            expected: dict[int, str] = {}
            if self._options.verify and "get" in phases:
                expected = {i: self._payload.md5(i, workload.size) for i in range(workload.count)}
            ops: dict[str, Callable[[int], Awaitable[int]]] = {
                "put": lambda i: self._put(session, prefix, i, workload.size),
                "get": lambda i: self._get(session, prefix, i, workload.size, expected.get(i)),
                "delete": lambda i: self._delete(session, prefix, i),
            }
            results: dict[str, PhaseResult] = {}
            for phase in phases:
                results[phase] = await _run_phase(
                    workload.count,
                    workload.concurrency,
                    ops[phase],
                    self._options.phase_deadline_s,
                )
            return results

    async def _put(self, session: aiohttp.ClientSession, prefix: str, index: int, size: int) -> int:
        headers = {
            **self._endpoint.headers,
            "Content-Length": str(size),
            "Content-Type": "application/octet-stream",
        }
        body = self._payload.body(index, size)
        async with session.put(self._url(prefix, index), data=body, headers=headers) as response:
            answer = await response.read()
            if response.status not in (200, 201, 204):
                raise BenchError(f"PUT answered {response.status}: {answer[:200]!r}")
        return size

    async def _get(
        self,
        session: aiohttp.ClientSession,
        prefix: str,
        index: int,
        size: int,
        md5: str | None,
    ) -> int:
        digest = hashlib.md5(usedforsecurity=False) if md5 is not None else None
        received = 0
        url = self._url(prefix, index)
        async with session.get(url, headers=self._endpoint.headers) as response:
            if response.status != 200:
                answer = await response.read()
                raise BenchError(f"GET answered {response.status}: {answer[:200]!r}")
            while chunk := await response.content.readany():
                received += len(chunk)
                if digest is not None:
                    digest.update(chunk)
        if received != size:
            raise BenchError(f"GET returned {received} bytes of {size}")
        if digest is not None and digest.hexdigest() != md5:
            raise BenchError(f"GET body md5 {digest.hexdigest()} differs from the sent {md5}")
        return received

    async def _delete(self, session: aiohttp.ClientSession, prefix: str, index: int) -> int:
        url = self._url(prefix, index)
        async with session.delete(url, headers=self._endpoint.headers) as response:
            answer = await response.read()
            if response.status not in (200, 202, 204):
                raise BenchError(f"DELETE answered {response.status}: {answer[:200]!r}")
        return 0
