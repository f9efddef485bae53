"""shardgate.transfer without a server: which unfinished upload a put resumes, which parts it
sends again, how a failed part is retried, and what the progress line counts."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from clusterkit import md5_hex

from shardgate.cli.objects_cmd import parse_size
from shardgate.transfer import (
    PART_META,
    SIZE_META,
    Gateway,
    Progress,
    TransferError,
    Uploader,
)

PART = 1000


class FakeGateway(Gateway):
    """Answers the calls Uploader makes from a scripted listing; records every part PUT."""

    def __init__(self, listing: list[dict[str, Any]], held: list[dict[str, Any]]) -> None:
        super().__init__(None, "http://gateway.invalid", "key")  # type: ignore[arg-type]
        self.listing = listing
        self.held = held
        self.calls: list[tuple[str, str]] = []
        self.sent: dict[int, bytes] = {}
        self.attempts: dict[int, int] = {}
        self.completed: list[dict[str, Any]] = []

    async def part(self, number: int, data: AsyncIterator[bytes]) -> dict[str, Any]:
        body = b"".join([chunk async for chunk in data])
        self.sent[number] = body
        return {
            "part_number": number,
            "size": len(body),
            "etag": md5_hex(body),
        }

    async def call(self, method: str, path: str, **kwargs: Any) -> Any:
        self.calls.append((method, path))
        if (method, path) == ("GET", "/v1/uploads"):
            return {"uploads": self.listing}
        if (method, path) == ("POST", "/v1/uploads"):
            return {"upload_id": "new", **kwargs["json"]}
        if method == "GET":
            return {"parts": self.held}
        if method == "PUT":
            number = int(path.rsplit("/", 1)[1])
            self.attempts[number] = self.attempts.get(number, 0) + 1
            return await self.part(number, kwargs["data"])
        self.completed = kwargs["json"]["parts"]
        return {"size": 0, "etag": "done"}


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "file.bin"
    path.write_bytes(bytes(range(256)) * 14)  # 3584 bytes: parts of 1000, 1000, 1000, 584
    return path


def upload(upload_id: str, key: str, size: int, part_size: int) -> dict[str, Any]:
    meta = {SIZE_META: str(size), PART_META: str(part_size)}
    return {"upload_id": upload_id, "key": key, "metadata": meta}


@pytest.mark.parametrize(
    ("text", "size"),
    [("16M", 16 << 20), ("16MiB", 16 << 20), ("1g", 1 << 30), ("5k", 5 << 10), ("512", 512)],
)
def test_part_sizes_are_read_with_binary_units(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "16T", "M", "-1", "1.5M"])
def test_a_size_that_is_not_one_is_refused(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        parse_size(text)


async def test_a_put_resumes_the_matching_upload_and_sends_only_the_parts_missing(
    source: Path,
) -> None:
    data = source.read_bytes()
    size = len(data)
    listing = [
        upload("other-key", "elsewhere.bin", size, PART),
        upload("other-size", "file.bin", size + 1, PART),
        upload("other-part-size", "file.bin", size, 2 * PART),
        upload("this-one", "file.bin", size, PART),
    ]
    held = [
        {"part_number": 1, "size": PART, "etag": md5_hex(data[:PART])},
        {"part_number": 2, "size": PART, "etag": md5_hex(b"something else")},
        {"part_number": 4, "size": 584, "etag": md5_hex(data[3 * PART :])},
    ]
    gateway = FakeGateway(listing, held)
    await Uploader(gateway, part_size=PART, parallel=2, quiet=True).upload(
        source, "b", "file.bin", "application/octet-stream"
    )
    assert ("POST", "/v1/uploads") not in gateway.calls
    assert ("GET", "/v1/uploads/this-one") in gateway.calls
    assert gateway.sent == {2: data[PART : 2 * PART], 3: data[2 * PART : 3 * PART]}
    assert gateway.completed == [
        {"part_number": n + 1, "etag": md5_hex(data[n * PART : (n + 1) * PART])} for n in range(4)
    ]


async def test_a_put_with_no_matching_upload_starts_one_stating_its_sizes(source: Path) -> None:
    gateway = FakeGateway([upload("u", "file.bin", 1, PART)], [])
    await Uploader(gateway, part_size=PART, parallel=4, quiet=True).upload(
        source, "b", "file.bin", "text/plain"
    )
    assert ("POST", "/v1/uploads") in gateway.calls
    assert sorted(gateway.sent) == [1, 2, 3, 4]
    assert b"".join(gateway.sent[n] for n in range(1, 5)) == source.read_bytes()


class FlakyGateway(FakeGateway):
    """Part 1's first attempt fails once all its bytes are read and part 2 is in."""

    def __init__(self) -> None:
        super().__init__([], [])
        self.part_two_in = asyncio.Event()

    async def part(self, number: int, data: AsyncIterator[bytes]) -> dict[str, Any]:
        answer = await super().part(number, data)
        if number == 2:
            self.part_two_in.set()
        if number == 1 and self.attempts[1] == 1:
            await self.part_two_in.wait()
            raise aiohttp.ClientConnectionError("connection reset")
        return answer


class WatchedUploader(Uploader):
    progress: Progress | None = None

    async def send_part(
        self, upload_id: str, number: int, path: Path, offset: int, length: int, progress: Progress
    ) -> str:
        self.progress = progress
        return await super().send_part(upload_id, number, path, offset, length, progress)


async def test_a_failed_part_is_sent_again_and_the_upload_completes(source: Path) -> None:
    gateway = FlakyGateway()
    uploader = WatchedUploader(gateway, part_size=PART, parallel=2, quiet=True)
    await uploader.upload(source, "b", "file.bin", "application/octet-stream")
    assert gateway.attempts == {1: 2, 2: 1, 3: 1, 4: 1}
    assert [p["part_number"] for p in gateway.completed] == [1, 2, 3, 4]


async def test_progress_counts_every_byte_once_after_a_retry(source: Path) -> None:
    uploader = WatchedUploader(FlakyGateway(), part_size=PART, parallel=2, quiet=True)
    await uploader.upload(source, "b", "file.bin", "application/octet-stream")
    assert uploader.progress is not None
    assert uploader.progress.done == source.stat().st_size


class BrokenGateway(FakeGateway):
    async def part(self, number: int, data: AsyncIterator[bytes]) -> dict[str, Any]:
        answer = await super().part(number, data)
        if number == 3:
            return {**answer, "etag": "0" * 32}  # stored something else than was sent
        return answer


async def test_a_part_that_keeps_failing_ends_the_put_naming_it(source: Path) -> None:
    gateway = BrokenGateway([], [])
    uploader = Uploader(gateway, part_size=PART, parallel=1, retries=2, quiet=True)
    with pytest.raises(TransferError, match="part 3 failed 2 times"):
        await uploader.upload(source, "b", "file.bin", "application/octet-stream")
    assert gateway.attempts[3] == 2
    assert gateway.completed == []


async def test_a_failed_put_leaves_no_part_uploading(source: Path) -> None:
    gateway = BrokenGateway([], [])
    uploader = Uploader(gateway, part_size=PART, parallel=1, retries=2, quiet=True)
    with pytest.raises(TransferError):
        await uploader.upload(source, "b", "file.bin", "application/octet-stream")
    assert asyncio.all_tasks() == {asyncio.current_task()}
