"""Must-shows 1 and 6: a 1 GiB file goes up in 16 MiB parts, four in flight, through a real
gateway; two parts fail on their first attempt (one refused with BadDigest, one cut off halfway)
and are retried; the object reads back whole and by Range across part boundaries, and the
gateway's RSS stays flat while it carries the parts."""

from __future__ import annotations

import base64
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, cast

import aiohttp
import pytest
from clusterkit import Api, Sampler, metric, rss_bytes, scratch_cluster, write_file

from shardgate.cli.dev import DevCluster
from shardgate.transfer import Gateway, TransferError, Uploader

MiB = 1024 * 1024
GiB = 1024 * MiB
PART = 16 * MiB
RSS_GROWTH_LIMIT = 64 * MiB
BAD_DIGEST_PART = 3
CUT_PART = 7


def read_span(path: Path, start: int, end: int) -> bytes:
    """Bytes start..end (end exclusive) of a file."""
    with path.open("rb") as fh:
        fh.seek(start)
        return fh.read(end - start)


async def cut_after(body: AsyncIterator[bytes], limit: int) -> AsyncIterator[bytes]:
    """Pass `limit` bytes of a body on, then fail as a dropped connection would."""
    sent = 0
    try:
        async for chunk in body:
            yield chunk
            sent += len(chunk)
            if sent >= limit:
                raise aiohttp.ClientConnectionError("connection cut by the test")
    finally:
        await body.aclose()  # type: ignore[attr-defined]


class FaultyGateway(Gateway):
    """Spoils the first attempt of two parts: one carries a wrong Content-MD5, so the gateway
    refuses it after the whole body; the other's connection drops halfway through its body."""

    def __init__(self, session: aiohttp.ClientSession, url: str, key: str) -> None:
        super().__init__(session, url, key)
        self.attempts: Counter[int] = Counter()
        self.failures: list[tuple[int, str]] = []
        self.in_flight = 0
        self.most_in_flight = 0

    async def call(self, method: str, path: str, **kwargs: Any) -> Any:
        number = int(path.rsplit("/", 1)[1]) if method == "PUT" and "/parts/" in path else 0
        self.attempts[number] += 1
        if number == BAD_DIGEST_PART and self.attempts[number] == 1:
            wrong = base64.b64encode(bytes(16)).decode()
            kwargs["headers"] = {**kwargs.get("headers", {}), "Content-MD5": wrong}
        if number == CUT_PART and self.attempts[number] == 1:
            kwargs["data"] = cut_after(kwargs["data"], PART // 2)
        self.in_flight += bool(number)
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            return await super().call(method, path, **kwargs)
        except (TransferError, aiohttp.ClientError) as exc:
            self.failures.append((number, str(exc)))
            raise
        finally:
            self.in_flight -= bool(number)


@pytest.fixture
def big_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevCluster]:
    """A cluster of its own whose gigabytes of replicas are removed afterwards."""
    yield from scratch_cluster(tmp_path_factory, "big-cluster")


@pytest.fixture
def source(tmp_path: Path) -> Iterator[Path]:
    """Where the test writes its gigabyte; removed afterwards rather than kept by pytest."""
    path = tmp_path / "gigabyte.bin"
    yield path
    path.unlink(missing_ok=True)


@pytest.mark.slow
async def test_gigabyte_in_parallel_parts_with_retries_reads_back_whole_and_by_range(
    big_cluster: DevCluster, session: aiohttp.ClientSession, source: Path
) -> None:
    assert big_cluster.gateway is not None
    pid = big_cluster.gateway.process.pid
    api = Api(session, big_cluster.url, big_cluster.api_key)
    await api.create_bucket("big")
    sha256 = write_file(source, GiB, seed=11)
    parts_before = await metric(session, big_cluster.url, "shardgate_gateway_parts_received_total")

    gateway = FaultyGateway(session, big_cluster.url, big_cluster.api_key)
    uploader = Uploader(gateway, part_size=PART, parallel=4, quiet=True)
    baseline = rss_bytes(pid)
    with Sampler(lambda: rss_bytes(pid)) as rss:
        started = time.perf_counter()
        record = await uploader.upload(source, "big", "gigabyte.bin", "application/octet-stream")
        elapsed = time.perf_counter() - started

    count = GiB // PART
    assert record["size"] == GiB
    assert record["etag"].endswith(f"-{count}")
    assert [number for number, _ in gateway.failures] == [BAD_DIGEST_PART, CUT_PART]
    assert "400 BadDigest" in gateway.failures[0][1]
    assert gateway.attempts[BAD_DIGEST_PART] == gateway.attempts[CUT_PART] == 2
    assert gateway.most_in_flight == 4
    # The spoiled attempts were never stored: each part was stored exactly once.
    parts_after = await metric(session, big_cluster.url, "shardgate_gateway_parts_received_total")
    assert parts_after - parts_before == count

    samples = cast("list[int]", rss.samples)
    peak = max(samples)
    growth = peak - baseline
    print(
        f"\n1 GiB in {count} x 16 MiB parts, 4 in flight, 2 retried: {elapsed:.1f}s "
        f"({GiB / elapsed / MiB:.0f} MiB/s); gateway RSS {baseline / MiB:.0f} MiB -> peak "
        f"{peak / MiB:.0f} MiB (+{growth / MiB:.1f} MiB) over {len(samples)} samples"
    )
    assert growth < RSS_GROWTH_LIMIT

    started = time.perf_counter()
    assert await api.get_sha256("big", "gigabyte.bin") == (200, sha256, GiB)
    rate = GiB / (time.perf_counter() - started) / MiB
    print(f"GET of the 1 GiB multipart object, hashed by the client: {rate:.0f} MiB/s")

    spans = {
        f"bytes={PART - 10}-{PART + 9}": (PART - 10, PART + 10),  # across the 1|2 boundary
        f"bytes={PART + 100}-{3 * PART + 99}": (PART + 100, 3 * PART + 100),  # parts 2, 3, 4
        f"bytes={5 * PART}-{6 * PART - 1}": (5 * PART, 6 * PART),  # exactly part 6
        "bytes=-1000": (GiB - 1000, GiB),  # suffix inside the last part
        f"bytes=-{PART + 10}": (GiB - PART - 10, GiB),  # suffix across the last boundary
        f"bytes={GiB - 2 * PART - 7}-": (GiB - 2 * PART - 7, GiB),  # open end, three parts
        "bytes=0-0": (0, 1),
    }
    for header, (start, end) in spans.items():
        async with session.get(
            api.object_url("big", "gigabyte.bin"), headers={**api.auth, "Range": header}
        ) as resp:
            body = await resp.read()
            assert resp.status == 206, header
            assert resp.headers["Content-Range"] == f"bytes {start}-{end - 1}/{GiB}", header
        assert body == read_span(source, start, end), header
