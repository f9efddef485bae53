"""Multipart uploads as S3 has them: parts in any order and in parallel, each stored and
replicated like an object; complete publishes a manifest that references the parts (no byte is
copied); abort and expiry reclaim them.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from collections.abc import AsyncIterable, Mapping, Sequence
from dataclasses import dataclass

from gateway.catalog import Catalog, ObjectRecord, PartRecord, UploadRecord
from gateway.content_types import check_head, check_type
from gateway.direct_uploads import DirectUploads, Presigned
from gateway.errors import (
    EntityTooLarge,
    EntityTooSmall,
    InvalidArgument,
    InvalidPart,
    InvalidPartOrder,
    NoSuchUpload,
    UploadConflict,
)
from gateway.metrics import GatewayMetrics
from gateway.object_service import ObjectService
from gateway.replicated_write import ReplicatedWriter, WriteRequest
from shardgate.internal_api import PARTS_BUCKET, part_key

log = logging.getLogger(__name__)
MiB = 1024 * 1024


@dataclass(frozen=True)
class PartRules:
    min_part_size: int = 5 * MiB
    max_part_size: int = 5 * 1024 * MiB
    max_parts: int = 10_000
    lifetime: float = 24 * 3600.0


class MultipartUploads:
    def __init__(
        self,
        *,
        objects: ObjectService,
        catalog: Catalog,
        writer: ReplicatedWriter,
        rules: PartRules,
        write_quorum: int,
        metrics: GatewayMetrics,
        direct: DirectUploads,
    ) -> None:
        self._metrics = metrics
        self._direct = direct
        self._objects = objects
        self._catalog = catalog
        self._writer = writer
        self.rules = rules
        self._quorum = write_quorum

    async def initiate(
        self, bucket: str, key: str, content_type: str, user_meta: Mapping[str, str]
    ) -> UploadRecord:
        policy = await self._objects.bucket(bucket)
        check_type(content_type, policy.allowed_types)
        now = time.time()
        record = UploadRecord(
            secrets.token_hex(16),
            bucket,
            key,
            content_type,
            dict(user_meta),
            now,
            now + self.rules.lifetime,
        )
        await self._catalog.add_upload(record)
        return record

    async def open_upload(self, upload_id: str) -> UploadRecord:
        upload = await self._catalog.get_upload(upload_id)
        if upload is None or upload.state != "open" or upload.expires < time.time():
            raise NoSuchUpload(f"no upload in progress with id {upload_id!r}")
        return upload

    async def upload_part(
        self,
        upload_id: str,
        part_number: int,
        body: AsyncIterable[bytes],
        *,
        size: int | None,
        md5: str | None,
        sha256: str | None = None,
    ) -> PartRecord:
        """Store one part, replicated; a part sent again replaces the earlier one."""
        await self.open_upload(upload_id)
        if not 1 <= part_number <= self.rules.max_parts:
            raise InvalidArgument(f"part numbers run from 1 to {self.rules.max_parts}")
        if size is not None and size > self.rules.max_part_size:
            raise EntityTooLarge(f"a part may be at most {self.rules.max_part_size} bytes")
        addr = self._objects.address(PARTS_BUCKET, part_key(upload_id, part_number))
        version = self._objects.new_version()
        request = WriteRequest(
            addr,
            version,
            "application/octet-stream",
            {},
            size,
            self.rules.max_part_size,
            md5=md5,
            sha256=sha256,
        )
        outcome = await self._writer.write(self._objects.ring, request, body, self._quorum)
        part = PartRecord(
            upload_id, part_number, version, outcome.size, outcome.etag, outcome.holders
        )
        await self._record_part(part)
        return part

    async def _record_part(self, part: PartRecord) -> None:
        """Record a stored part, or take it back if its upload closed while it streamed."""
        accepted, reclaim = await self._catalog.put_part(part, time.time())
        if not accepted:
            await self._objects.reclaim_parts([part])
            raise NoSuchUpload(
                f"upload {part.upload_id} ended while part {part.part_number} arrived"
            )
        self._metrics.parts_received.inc()
        if reclaim is not None:
            await self._objects.reclaim_parts([reclaim])

    async def presign_part(
        self, upload_id: str, part_number: int, *, expires_in: float | None, size: int | None
    ) -> Presigned:
        upload = await self.open_upload(upload_id)
        if not 1 <= part_number <= self.rules.max_parts:
            raise InvalidArgument(f"part numbers run from 1 to {self.rules.max_parts}")
        if size is not None and size > self.rules.max_part_size:
            raise EntityTooLarge(f"a part may be at most {self.rules.max_part_size} bytes")
        return await self._direct.presign_part(
            upload, part_number, expires_in=expires_in, size=size, max_size=self.rules.max_part_size
        )

    async def _adopt(self, upload_id: str) -> None:
        """Record the parts that were sent to a node directly (presigned) and have arrived."""
        await self._direct.adopt_parts(upload_id, self.rules.max_part_size, self._record_part)

    async def in_progress(self, bucket: str) -> list[UploadRecord]:
        await self._objects.bucket(bucket)
        return await self._catalog.list_uploads(bucket, time.time())

    async def progress(self, upload_id: str) -> tuple[UploadRecord, list[PartRecord]]:
        await self.open_upload(upload_id)
        await self._adopt(upload_id)
        upload, parts = await self._catalog.upload_with_parts(upload_id)
        if upload is None or upload.state != "open":
            raise NoSuchUpload(f"no upload in progress with id {upload_id!r}")
        return upload, parts

    async def complete(self, upload_id: str, listed: Sequence[tuple[int, str]]) -> ObjectRecord:
        """Validate the client's part list as S3 does, check the bucket's policy against the
        whole object, and publish the manifest it names."""
        upload = await self.open_upload(upload_id)
        policy = await self._objects.bucket(upload.bucket)
        await self._adopt(upload_id)
        stored = {part.part_number: part for part in await self._catalog.list_parts(upload_id)}
        numbers = [number for number, _ in listed]
        if not listed or numbers != sorted(set(numbers)):
            raise InvalidPartOrder("list the parts once each, in ascending part-number order")
        chosen: list[PartRecord] = []
        for index, (number, etag) in enumerate(listed):
            part = stored.get(number)
            if part is None or part.etag != etag.strip('"'):
                raise InvalidPart(f"part {number} was not uploaded with ETag {etag}")
            minimum = self.rules.min_part_size
            if index < len(listed) - 1 and part.size < minimum:
                raise EntityTooSmall(
                    f"part {number} is {part.size} bytes; all but the last need {minimum}"
                )
            chosen.append(part)
        size = sum(part.size for part in chosen)
        if size > self._objects.limit_for(policy):
            raise EntityTooLarge(f"the object would be {size} bytes, over the bucket's limit")
        check_type(upload.content_type, policy.allowed_types)
        check_head(upload.content_type, await self._objects.first_bytes(chosen[0], 4096))
        digest = hashlib.md5(b"".join(bytes.fromhex(p.etag) for p in chosen), usedforsecurity=False)
        record = ObjectRecord(
            bucket=upload.bucket,
            key=upload.key,
            version=self._objects.new_version(),
            size=size,
            etag=f"{digest.hexdigest()}-{len(chosen)}",
            content_type=upload.content_type,
            replicas=(),
            user_meta=dict(upload.user_meta),
            manifest=tuple(chosen),
        )
        previous = await self._catalog.get_object(upload.bucket, upload.key)
        ending, parts = await self._catalog.end_upload(upload_id, "completed", record)
        if ending == "parts_changed":
            raise UploadConflict("a part was sent again while completing; complete again")
        if ending == "not_open":
            raise NoSuchUpload(f"upload {upload_id} was completed or aborted meanwhile")
        await self._objects.reclaim_parts([part for part in parts if part not in chosen])
        if previous is not None:
            await self._objects.retire(previous, record)
        return await self._objects.as_published(record)

    async def abort(self, upload_id: str) -> int:
        """End the upload and reclaim its parts; the number of parts reclaimed."""
        ending, parts = await self._catalog.end_upload(upload_id, "aborted")
        if ending != "ended":
            raise NoSuchUpload(f"no upload in progress with id {upload_id!r}")
        await self._objects.reclaim_parts(parts)
        return len(parts)

    async def expire(self, now: float) -> int:
        """Abort every upload past its expiry (the sweeper's job for multipart uploads)."""
        expired = await self._catalog.expired_uploads(now)
        for upload in expired:
            ending, parts = await self._catalog.end_upload(upload.upload_id, "expired")
            if ending == "ended":
                await self._objects.reclaim_parts(parts)
                log.info(
                    "expired upload %s of %s/%s: %d parts reclaimed",
                    upload.upload_id,
                    upload.bucket,
                    upload.key,
                    len(parts),
                )
        purged = await self._catalog.purge_ended(now - self.rules.lifetime)
        if purged:
            log.info("forgot %d ended uploads older than the upload lifetime", purged)
        return len(expired)
