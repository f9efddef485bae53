"""Form uploads: multipart/form-data with `file` parts (and optional `key` fields naming the
file that follows), each streamed to the replicas as it is parsed; all or nothing."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from pathlib import PurePosixPath

from aiohttp import BodyPartReader, hdrs, web
from aiohttp.http_exceptions import BadHttpMessage

from gateway.catalog import PartRecord
from gateway.errors import GatewayError, MalformedPost
from gateway.keys import CONFIG, OBJECTS, PRINCIPAL
from gateway.names import check_bucket, check_key
from gateway.object_service import ObjectService
from shardgate.streams import BodyTimeout

MAX_FIELD_BYTES = 4096
_EXTENSION = re.compile(r"\.[A-Za-z0-9]{1,10}")


async def _part_chunks(part: BodyPartReader, size: int, idle: float) -> AsyncIterator[bytes]:
    while True:
        try:
            async with asyncio.timeout(idle):
                chunk = await part.read_chunk(size)
        except TimeoutError:
            raise BodyTimeout(f"no form bytes for {idle:.0f}s") from None
        if not chunk:
            if not part.at_eof():
                raise MalformedPost("the form ended inside a file part")
            return
        yield chunk


async def _small_field(part: BodyPartReader) -> str:
    data = bytearray()
    while chunk := await part.read_chunk(MAX_FIELD_BYTES):
        data += chunk
        if len(data) > MAX_FIELD_BYTES:
            raise MalformedPost(f"form field {part.name!r} is longer than {MAX_FIELD_BYTES} bytes")
    try:
        return data.decode()
    except UnicodeDecodeError:
        raise MalformedPost(f"form field {part.name!r} is not UTF-8") from None


def generated_key(filename: str | None) -> str:
    """A fresh key that keeps the uploaded file's extension, if it has a sensible one."""
    suffix = PurePosixPath(filename or "").suffix
    return uuid.uuid4().hex + (suffix.lower() if _EXTENSION.fullmatch(suffix) else "")


async def post_objects(request: web.Request) -> web.Response:
    """Every file is staged first and published only once the whole form has arrived, so a
    form that fails changes nothing: not even an object one of its files would replace."""
    bucket = check_bucket(request.match_info["bucket"])
    request[PRINCIPAL].require("write", bucket)
    if not request.content_type.startswith("multipart/form-data"):
        raise MalformedPost("send multipart/form-data with one or more 'file' parts")
    objects = request.app[OBJECTS]
    await objects.bucket(bucket)
    staged: list[tuple[str, str, PartRecord]] = []
    try:
        await _stage_parts(request, bucket, objects, staged)
    except (GatewayError, ValueError, BadHttpMessage, ConnectionError, BodyTimeout) as exc:
        await objects.withdraw_staged([part for _, _, part in staged])
        if isinstance(exc, (ValueError, BadHttpMessage)):
            raise MalformedPost(f"the multipart body is malformed: {exc}") from exc
        raise
    if not staged:
        raise MalformedPost("the form has no 'file' part")
    stored = [await objects.publish_staged(bucket, key, part, ctype) for key, ctype, part in staged]
    return web.json_response({"objects": [record.to_json() for record in stored]}, status=201)


async def _stage_parts(
    request: web.Request,
    bucket: str,
    objects: ObjectService,
    staged: list[tuple[str, str, PartRecord]],
) -> None:
    config = request.app[CONFIG]
    reader = await request.multipart()
    next_key: str | None = None
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader):
            raise MalformedPost("nested multipart bodies are not supported")
        if part.name == "key":
            next_key = check_key(await _small_field(part))
        elif part.name == "file":
            key, next_key = next_key or generated_key(part.filename), None
            content_type = part.headers.get(hdrs.CONTENT_TYPE, "application/octet-stream")
            chunks = _part_chunks(part, config.chunk_size, config.body_idle_timeout)
            stored = await objects.stage(bucket, key, chunks, content_type)
            staged.append((key, content_type, stored))
        else:
            await _small_field(part)
