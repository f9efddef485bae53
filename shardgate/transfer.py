"""Client-side transfers for the CLI: uploads in one PUT or as parallel, retried, resumable
multipart parts; downloads that resume with Range. Memory is one chunk per part in flight."""

from __future__ import annotations

import asyncio
import hashlib
import os
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp

CHUNK = 1024 * 1024
SIZE_META = "sg-file-size"
PART_META = "sg-part-size"


class TransferError(Exception):
    """The gateway refused the transfer; the message carries its error code."""


@dataclass
class Progress:
    """One line on stderr: bytes done, rate, time left; redrawn at most five times a second."""

    total: int
    label: str
    done: int = 0
    quiet: bool = False
    started: float = field(default_factory=time.monotonic)
    _drawn: float = 0.0

    def add(self, count: int) -> None:
        self.done += count
        now = time.monotonic()
        if not self.quiet and (now - self._drawn > 0.2 or self.done >= self.total):
            self._drawn = now
            elapsed = max(now - self.started, 1e-6)
            rate = self.done / elapsed
            left = (self.total - self.done) / rate if rate else 0.0
            percent = 100 * self.done / self.total if self.total else 100.0
            done, total = self.done / 2**20, self.total / 2**20
            sys.stderr.write(
                f"\r{self.label} {percent:5.1f}% {done:,.1f}/{total:,.1f} MiB "
                f"{rate / 2**20:6.1f} MiB/s ETA {left:5.0f}s"
            )
            if self.done >= self.total:
                sys.stderr.write("\n")


async def _file_chunks(
    path: Path, offset: int, length: int, digest: Any, count: Callable[[int], None]
) -> AsyncIterator[bytes]:
    loop = asyncio.get_running_loop()
    fh = await loop.run_in_executor(None, path.open, "rb")
    try:
        await loop.run_in_executor(None, fh.seek, offset)
        while length > 0:
            chunk = await loop.run_in_executor(None, fh.read, min(CHUNK, length))
            if not chunk:
                raise TransferError(f"{path} shrank while it was being uploaded")
            length -= len(chunk)
            digest.update(chunk)
            count(len(chunk))
            yield chunk
    finally:
        fh.close()


def part_md5(path: Path, offset: int, length: int) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as fh:
        fh.seek(offset)
        while length > 0:
            chunk = fh.read(min(CHUNK, length))
            length -= len(chunk)
            digest.update(chunk)
    return digest.hexdigest()


class Gateway:
    """The handful of API calls transfers make."""

    def __init__(self, session: aiohttp.ClientSession, url: str, key: str) -> None:
        self.session = session
        self.url = url.rstrip("/")
        self.auth = {"Authorization": f"Bearer {key}"}

    def object_url(self, bucket: str, key: str) -> str:
        return f"{self.url}/v1/objects/{bucket}/{quote(key, safe='/')}"

    async def call(self, method: str, path: str, **kwargs: Any) -> Any:
        headers = {**self.auth, **kwargs.pop("headers", {})}
        async with self.session.request(method, self.url + path, headers=headers, **kwargs) as resp:
            body = await resp.json(content_type=None) if resp.status != 204 else None
            if resp.status >= 400:
                error = (body or {}).get("error", {})
                raise TransferError(
                    f"{method} {path}: {resp.status} {error.get('code')}: {error.get('message')}"
                )
            return body


class Uploader:
    def __init__(
        self,
        gateway: Gateway,
        *,
        part_size: int,
        parallel: int,
        retries: int = 3,
        quiet: bool = False,
    ) -> None:
        self.gateway = gateway
        self.part_size = part_size
        self.parallel = parallel
        self.retries = retries
        self.quiet = quiet

    async def upload(self, path: Path, bucket: str, key: str, content_type: str) -> Any:
        size = (await asyncio.to_thread(path.stat)).st_size
        progress = Progress(size, key, quiet=self.quiet)
        if size <= self.part_size:
            digest = hashlib.md5(usedforsecurity=False)
            body = _file_chunks(path, 0, size, digest, progress.add)
            headers = {"Content-Type": content_type, "Content-Length": str(size)}
            return await self.gateway.call(
                "PUT", f"/v1/objects/{bucket}/{quote(key, safe='/')}", data=body, headers=headers
            )
        upload = await self._resume_or_start(bucket, key, size, content_type)
        upload_id = upload["upload_id"]
        status = await self.gateway.call("GET", f"/v1/uploads/{upload_id}")
        held = {part["part_number"]: part for part in status["parts"]}
        spans = [
            (n + 1, offset, min(self.part_size, size - offset))
            for n, offset in enumerate(range(0, size, self.part_size))
        ]
        etags: dict[int, str] = {}
        todo = []
        for number, offset, length in spans:
            have = held.get(number)
            if (
                have
                and have["size"] == length
                and have["etag"] == await asyncio.to_thread(part_md5, path, offset, length)
            ):
                etags[number] = have["etag"]
                progress.add(length)
            else:
                todo.append((number, offset, length))
        slots = asyncio.Semaphore(self.parallel)

        async def send(number: int, offset: int, length: int) -> None:
            async with slots:
                etags[number] = await self.send_part(
                    upload_id, number, path, offset, length, progress
                )

        # A part that fails for good cancels the others: nothing keeps uploading behind an error.
        try:
            async with asyncio.TaskGroup() as group:
                for span in todo:
                    group.create_task(send(*span))
        except* TransferError as failed:
            raise failed.exceptions[0] from None
        listed = [{"part_number": n, "etag": etags[n]} for n, _, _ in spans]
        return await self.gateway.call(
            "POST", f"/v1/uploads/{upload_id}/complete", json={"parts": listed}
        )

    async def _resume_or_start(self, bucket: str, key: str, size: int, content_type: str) -> Any:
        """An unfinished upload of this key, size and part size, else a new one."""
        listing = await self.gateway.call("GET", "/v1/uploads", params={"bucket": bucket})
        wanted = {SIZE_META: str(size), PART_META: str(self.part_size)}
        for upload in reversed(listing["uploads"]):
            if upload["key"] == key and all(
                upload["metadata"].get(k) == v for k, v in wanted.items()
            ):
                return upload
        body = {"bucket": bucket, "key": key, "content_type": content_type, "metadata": wanted}
        return await self.gateway.call("POST", "/v1/uploads", json=body)

    async def send_part(
        self, upload_id: str, number: int, path: Path, offset: int, length: int, progress: Progress
    ) -> str:
        """One part, retried with back-off; the gateway's ETag must be the md5 we sent."""
        for attempt in range(1, self.retries + 1):
            digest = hashlib.md5(usedforsecurity=False)
            sent = 0

            def count(size: int) -> None:
                nonlocal sent
                sent += size
                progress.add(size)

            try:
                answer = await self.gateway.call(
                    "PUT",
                    f"/v1/uploads/{upload_id}/parts/{number}",
                    data=_file_chunks(path, offset, length, digest, count),
                    headers={"Content-Length": str(length)},
                )
                if answer["etag"] != digest.hexdigest():
                    raise TransferError(f"part {number}: the gateway stored md5 {answer['etag']}")
                return str(answer["etag"])
            except (TimeoutError, aiohttp.ClientError, TransferError) as exc:
                progress.add(-sent)
                if attempt == self.retries:
                    raise TransferError(f"part {number} failed {attempt} times: {exc}") from exc
                await asyncio.sleep(0.5 * 2**attempt)
        raise AssertionError("unreachable")


async def download(
    gateway: Gateway, bucket: str, key: str, target: Path, *, quiet: bool = False
) -> int:
    """Stream an object into `target`; an interrupted download resumes from target.partial,
    provided the object is still the version whose ETag was recorded beside it."""
    partial = target.with_name(target.name + ".partial")
    stamp = target.with_name(target.name + ".partial.etag")
    headers = dict(gateway.auth)
    have = partial.stat().st_size if partial.exists() and stamp.exists() else 0
    if have:
        headers.update({"Range": f"bytes={have}-", "If-Range": stamp.read_text()})
    async with gateway.session.get(gateway.object_url(bucket, key), headers=headers) as resp:
        etag = resp.headers.get("ETag", "")
        if resp.status == 416 and resp.headers.get("Content-Range") == f"bytes */{have}":
            total = have  # the partial file was already whole
        elif resp.status in (200, 206):
            if resp.status == 200 or etag != stamp.read_text():
                have = 0  # a new version, or no resume: start the file over
            total = have + int(resp.headers.get("Content-Length", 0))
            stamp.write_text(etag)
            progress = Progress(total, key, done=have, quiet=quiet)
            with partial.open("ab" if have else "wb") as fh:
                async for chunk in resp.content.iter_chunked(CHUNK):
                    await asyncio.to_thread(fh.write, chunk)
                    progress.add(len(chunk))
        else:
            error = (await resp.json(content_type=None)).get("error", {})
            raise TransferError(
                f"GET {bucket}/{key}: {resp.status} {error.get('code')}: {error.get('message')}"
            )
    os.replace(partial, target)
    stamp.unlink(missing_ok=True)
    return total
