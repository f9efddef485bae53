"""The one load client every target is driven with: PUT, then GET, then DELETE `count` objects
of `size` bytes with `concurrency` requests in flight, each phase bounded in time.

A direct target (`DirectPath`: no gateway carries the bytes) is asked first where each PUT or GET
goes (shardgate: a presigned node URL; SeaweedFS: `/dir/assign` on the master) and told of each
PUT's answer (shardgate: the commit); both count in the operation's time. Its phases are
`DIRECT_PHASES`: PUT, GET (asking included), then `sign` (untimed: ask for every GET URL) and
`get-url` (GET from the URL already in hand), and an untimed `cleanup` delete.

In correctness mode every GET body is hashed and compared with what was sent.
"""

from __future__ import annotations

import abc
import asyncio
import hashlib
import json
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import aiohttp

from bench.payload import Payload
from bench.stats import PhaseResult, summarize
from bench.workloads import Workload

PHASES = ("put", "get", "delete")
SIGN, GET_URL, CLEANUP = "sign", "get-url", "cleanup"
DIRECT_PHASES = ("put", "get", SIGN, GET_URL, CLEANUP)
UNTIMED = frozenset({SIGN, CLEANUP})  # run and recorded, but not reported as figures
_MAX_ERROR_SAMPLES = 5


class Endpoint(Protocol):
    """Where objects live on one target, and the headers every request to it carries."""

    @property
    def headers(self) -> Mapping[str, str]: ...

    def object_url(self, key: str) -> str: ...


class BenchError(Exception):
    """A request that completed but answered wrongly (status, length or hash)."""


@dataclass(frozen=True)
class Location:
    """Where a direct target sends one PUT or GET, and what it needs to finish a PUT."""

    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    ticket: str | None = None  # shardgate: the upload id to commit


class DirectPath(abc.ABC):
    """A target whose bytes go straight to a storage server: the client asks where first."""

    @abc.abstractmethod
    async def put_location(self, session: aiohttp.ClientSession, key: str) -> Location:
        """Where to PUT `key` (shardgate: presign; SeaweedFS: assign a file id)."""

    @abc.abstractmethod
    async def put_done(
        self, session: aiohttp.ClientSession, key: str, location: Location, answer: bytes, size: int
    ) -> None:
        """After the storage server took the body (shardgate: commit it)."""

    @abc.abstractmethod
    async def get_location(self, session: aiohttp.ClientSession, key: str) -> Location:
        """Where to GET `key` (shardgate: presign; SeaweedFS: where it was put)."""


def json_answer(answer: bytes, what: str) -> dict[str, Any]:
    """A JSON object from a server's answer, or BenchError."""
    try:
        value = json.loads(answer)
    except ValueError as exc:
        raise BenchError(f"{what} answered no JSON: {answer[:200]!r}") from exc
    if not isinstance(value, dict):
        raise BenchError(f"{what} answered {answer[:200]!r}, not a JSON object")
    return value


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
        self._direct = endpoint if isinstance(endpoint, DirectPath) else None
        self._payload = payload
        self._options = options
        self._signed: dict[int, Location] = {}  # the `sign` phase's GET URLs, for `get-url`

    @staticmethod
    def _key(prefix: str, index: int) -> str:
        return f"{prefix}/{index:06d}"

    def _url(self, prefix: str, index: int) -> str:
        return self._endpoint.object_url(self._key(prefix, index))

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
            if self._options.verify and {"get", GET_URL} & set(phases):
                expected = {i: self._payload.md5(i, workload.size) for i in range(workload.count)}
            ops: dict[str, Callable[[int], Awaitable[int]]] = {
                "put": lambda i: self._put(session, prefix, i, workload.size),
                "get": lambda i: self._get(session, prefix, i, workload.size, expected.get(i)),
                "delete": lambda i: self._delete(session, prefix, i),
                SIGN: lambda i: self._sign(session, prefix, i),
                GET_URL: lambda i: self._get(
                    session, prefix, i, workload.size, expected.get(i), signed=True
                ),
                CLEANUP: lambda i: self._delete(session, prefix, i),
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
        location = (
            await self._direct.put_location(session, self._key(prefix, index))
            if self._direct is not None
            else Location(self._url(prefix, index), self._endpoint.headers)
        )
        headers = {
            **location.headers,
            "Content-Length": str(size),
            "Content-Type": "application/octet-stream",
        }
        body = self._payload.body(index, size)
        async with session.put(location.url, data=body, headers=headers) as response:
            answer = await response.read()
            if response.status not in (200, 201, 204):
                raise BenchError(f"PUT answered {response.status}: {answer[:200]!r}")
        if self._direct is not None:
            await self._direct.put_done(session, self._key(prefix, index), location, answer, size)
        return size

    async def _sign(self, session: aiohttp.ClientSession, prefix: str, index: int) -> int:
        """Untimed, before `get-url`: where each GET will go."""
        if self._direct is None:
            raise BenchError("only a direct target has GET URLs to ask for")
        self._signed[index] = await self._direct.get_location(session, self._key(prefix, index))
        return 0

    async def _get(
        self,
        session: aiohttp.ClientSession,
        prefix: str,
        index: int,
        size: int,
        md5: str | None,
        signed: bool = False,
    ) -> int:
        digest = hashlib.md5(usedforsecurity=False) if md5 is not None else None
        received = 0
        if signed:
            location = self._signed.get(index)
            if location is None:
                raise BenchError("no GET URL: asking for it (untimed) failed")
        elif self._direct is not None:
            location = await self._direct.get_location(session, self._key(prefix, index))
        else:
            location = Location(self._url(prefix, index), self._endpoint.headers)
        async with session.get(location.url, headers=location.headers) as response:
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
