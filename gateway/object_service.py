"""Objects as the API sees them: placement, replicated writes and reads, and catalog visibility.

Plain class, no HTTP: handlers turn requests into these calls and results into responses.
"""

from __future__ import annotations

import dataclasses
import logging
import time
import uuid
from collections.abc import AsyncIterable, Mapping, Sequence

from gateway.catalog import (
    BucketRecord,
    Catalog,
    MirrorStatus,
    ObjectRecord,
    PartRecord,
    Repair,
    UploadRecord,
)
from gateway.content_types import check_head, check_type
from gateway.errors import (
    EntityTooLarge,
    InvalidRange,
    NoSuchBucket,
    NoSuchKey,
    PreconditionFailed,
    QuorumNotReached,
)
from gateway.fanout import fan_out
from gateway.manifest_read import ManifestStream
from gateway.metrics import GatewayMetrics
from gateway.node_health import NodeHealth
from gateway.nodes import NodeClient, ObjectAddress
from gateway.replicated_read import ObjectStream, ReplicatedReader
from gateway.replicated_write import ReplicatedWriter, WriteRequest
from ring import Node, Ring, object_hash, partition_of
from shardgate.internal_api import PARTS_BUCKET, part_key
from shardgate.ranges import Unsatisfiable, byte_range
from shardgate.versions import VersionClock

log = logging.getLogger(__name__)
BUCKET_CACHE_SECONDS = 2.0


class ObjectService:
    def __init__(
        self,
        *,
        ring: Ring,
        catalog: Catalog,
        client: NodeClient,
        health: NodeHealth,
        writer: ReplicatedWriter,
        reader: ReplicatedReader,
        metrics: GatewayMetrics,
        write_quorum: int,
        max_object_size: int,
        io_timeout: float,
        staging_lifetime: float,
    ) -> None:
        self.ring = ring
        self._catalog = catalog
        self._client = client
        self._health = health
        self._writer = writer
        self._reader = reader
        self._metrics = metrics
        self._quorum = write_quorum
        self._max_size = max_object_size
        self._io_timeout = io_timeout
        self._staging_lifetime = staging_lifetime
        self._clock = VersionClock()
        self._buckets: dict[str, tuple[float, BucketRecord | None]] = {}

    def new_version(self) -> str:
        return self._clock.next()

    def limit_for(self, policy: BucketRecord) -> int:
        limit = self._max_size if policy.max_object_size is None else policy.max_object_size
        return min(limit, self._max_size)

    def address(self, bucket: str, key: str) -> ObjectAddress:
        obj_hash = object_hash(bucket, key)
        return ObjectAddress(
            partition_of(obj_hash, self.ring.partition_power), obj_hash, bucket, key
        )

    async def bucket(self, name: str) -> BucketRecord:
        """The bucket's policy, cached for a moment: every request asks, policies rarely change
        (this gateway forgets its copy on a change; other gateways see it within the TTL)."""
        now = time.monotonic()
        cached = self._buckets.get(name)
        if cached is not None and cached[0] > now:
            record = cached[1]
        else:
            record = await self._catalog.get_bucket(name)
            if len(self._buckets) > 10_000:
                self._buckets.clear()
            self._buckets[name] = (now + BUCKET_CACHE_SECONDS, record)
        if record is None:
            raise NoSuchBucket(f"bucket {name!r} does not exist")
        return record

    def forget_bucket(self, name: str) -> None:
        self._buckets.pop(name, None)

    async def as_published(self, record: ObjectRecord) -> ObjectRecord:
        """A just-committed record as the catalog shows it: in a mirrored bucket, its copy to
        S3 is pending (the commit queued the job)."""
        if (await self.bucket(record.bucket)).mirror:
            return dataclasses.replace(record, mirror=MirrorStatus("pending"))
        return record

    async def head(self, bucket: str, key: str) -> ObjectRecord:
        record = await self._catalog.get_object(bucket, key)
        if record is None:
            raise NoSuchKey(f"{bucket}/{key} does not exist")
        return record

    async def put(
        self,
        bucket: str,
        key: str,
        body: AsyncIterable[bytes],
        *,
        size: int | None,
        content_type: str,
        user_meta: Mapping[str, str],
        md5: str | None = None,
        sha256: str | None = None,
        create_only: bool = False,
    ) -> ObjectRecord:
        """Stream the body to the replicas; visible once W hold it and the catalog says so.

        Every check that can fail is made before the last byte reaches a replica, so a
        refused upload leaves no committed replica behind.
        """
        policy = await self.bucket(bucket)
        limit = self.limit_for(policy)
        if size is not None and size > limit:
            raise EntityTooLarge(f"object of {size} bytes exceeds the {limit}-byte limit")
        check_type(content_type, policy.allowed_types)
        if create_only and await self._catalog.get_object(bucket, key) is not None:
            raise PreconditionFailed(f"{bucket}/{key} exists and If-None-Match: * was sent")
        addr = self.address(bucket, key)
        version = self._clock.next()
        request = WriteRequest(
            addr,
            version,
            content_type,
            dict(user_meta),
            size,
            limit,
            md5=md5,
            sha256=sha256,
            check_head=lambda head: check_head(content_type, head),
            create_only=create_only,
        )
        self._metrics.uploads_in_progress.inc()
        try:
            outcome = await self._writer.write(self.ring, request, body, self._quorum)
        finally:
            self._metrics.uploads_in_progress.dec()
        repairs = [Repair(bucket, key, version, node_id, "missed") for node_id in outcome.missed]
        repairs += [
            Repair(bucket, key, version, primary, f"handoff:{node}")
            for primary, node in outcome.handoffs
        ]
        record = ObjectRecord(
            bucket=bucket,
            key=key,
            version=version,
            size=outcome.size,
            etag=outcome.etag,
            content_type=content_type,
            replicas=outcome.holders,
            user_meta=dict(user_meta),
            sha256=outcome.sha256,
        )
        previous = await self._catalog.get_object(bucket, key)
        if not await self._catalog.commit_object(record, repairs, create_only=create_only):
            if create_only:
                holders = [self.ring.node(node_id) for node_id in outcome.holders]
                await self._writer.withdraw(addr, version, holders)
                raise PreconditionFailed(f"{bucket}/{key} was created by another upload first")
            log.info("%s/%s %s was superseded before it was recorded", bucket, key, version)
        elif previous is not None:
            await self.retire(previous, record)
        self.count_repairs(repairs)
        return await self.as_published(record)

    def count_repairs(self, repairs: Sequence[Repair]) -> None:
        """Recorded with a commit: the replicas the repair loop must still write."""
        self._metrics.repairs_queued.inc(len(repairs))

    async def stage(
        self, bucket: str, key: str, body: AsyncIterable[bytes], content_type: str
    ) -> PartRecord:
        """Store a file as an invisible part under the bucket's policy, for publish_staged later.

        Unlike put, staging never replaces a live version on any node, so a batch of files
        (a form) can be published all together or withdrawn without a trace. The catalog
        records the staging as an upload in progress, so the sweeper leaves its part alone.
        """
        policy = await self.bucket(bucket)
        limit = self.limit_for(policy)
        check_type(content_type, policy.allowed_types)
        staging_id, now = f"form-{uuid.uuid4().hex}", time.time()
        await self._catalog.add_upload(
            UploadRecord(
                staging_id,
                bucket,
                key,
                content_type,
                {},
                now,
                now + self._staging_lifetime,
                state="staging",
            )
        )
        addr = self.address(PARTS_BUCKET, part_key(staging_id, 1))
        version = self._clock.next()
        request = WriteRequest(
            addr,
            version,
            content_type,
            {},
            None,
            limit,
            check_head=lambda head: check_head(content_type, head),
        )
        self._metrics.uploads_in_progress.inc()
        try:
            outcome = await self._writer.write(self.ring, request, body, self._quorum)
        finally:
            self._metrics.uploads_in_progress.dec()
        return PartRecord(staging_id, 1, version, outcome.size, outcome.etag, outcome.holders)

    async def publish_staged(
        self, bucket: str, key: str, part: PartRecord, content_type: str
    ) -> ObjectRecord:
        """Make a staged file the object at bucket/key (a one-part manifest; no byte moves)."""
        record = ObjectRecord(
            bucket=bucket,
            key=key,
            version=self._clock.next(),
            size=part.size,
            etag=part.etag,
            content_type=content_type,
            replicas=(),
            manifest=(part,),
        )
        previous = await self._catalog.get_object(bucket, key)
        if await self._catalog.commit_object(record) and previous is not None:
            await self.retire(previous, record)
        await self._catalog.end_upload(part.upload_id, "completed")
        return await self.as_published(record)

    async def withdraw_staged(self, parts: Sequence[PartRecord]) -> None:
        """Undo stage: reclaim the parts and end their stagings."""
        await self.reclaim_parts(parts)
        for part in parts:
            await self._catalog.end_upload(part.upload_id, "aborted")

    async def list(
        self, bucket: str, *, prefix: str, after: str, limit: int
    ) -> tuple[list[ObjectRecord], str | None]:
        """One page in key order, and the key to continue after (None on the last page)."""
        await self.bucket(bucket)
        page = await self._catalog.list_objects(bucket, prefix=prefix, after=after, limit=limit + 1)
        if len(page) > limit:
            return page[:limit], page[limit - 1].key
        return page, None

    async def open(
        self, record: ObjectRecord, range_header: str | None
    ) -> ObjectStream | ManifestStream:
        if not record.manifest:
            addr = self.address(record.bucket, record.key)
            return await self._reader.open(self.ring, addr, record, range_header)
        span = None
        if range_header:
            try:
                span = byte_range(range_header, record.size)
            except Unsatisfiable:
                raise InvalidRange(
                    "the range is outside the object",
                    headers={"Content-Range": f"bytes */{record.size}"},
                ) from None
        return ManifestStream(self._reader, self.ring, self._locate_part, record, span)

    def _locate_part(self, part: PartRecord) -> tuple[ObjectAddress, ObjectRecord]:
        key = part_key(part.upload_id, part.part_number)
        as_object = ObjectRecord(
            PARTS_BUCKET,
            key,
            part.version,
            part.size,
            part.etag,
            "application/octet-stream",
            part.replicas,
        )
        return self.address(PARTS_BUCKET, key), as_object

    async def first_bytes(self, part: PartRecord, count: int) -> bytes:
        """The first `count` bytes of a part (for the magic-number check of a whole upload)."""
        if part.size == 0:
            return b""
        addr, as_object = self._locate_part(part)
        stream = await self._reader.open(
            self.ring, addr, as_object, f"bytes=0-{min(count, part.size) - 1}"
        )
        return b"".join([chunk async for chunk in stream.chunks(count)])

    async def retire(self, previous: ObjectRecord, successor: ObjectRecord) -> None:
        """Reclaim what a replaced object held: its parts, or, when a manifest takes the place
        of a plain object, the plain version (a plain write already superseded it on the nodes)."""
        if previous.manifest:
            await self.reclaim_parts(previous.manifest)
        elif successor.manifest:
            known = {node.id: node for node in self.ring.nodes}
            nodes = [known[n] for n in previous.replicas if n in known]
            await self._writer.withdraw(
                self.address(previous.bucket, previous.key), previous.version, nodes
            )

    async def reclaim_parts(self, parts: Sequence[PartRecord]) -> None:
        """Withdraw parts from their replicas; a replica that cannot be reached keeps its copy
        until the sweeper finds it unreferenced."""
        known = {node.id: node for node in self.ring.nodes}
        for part in parts:
            addr, _ = self._locate_part(part)
            await self._writer.withdraw(
                addr, part.version, [known[n] for n in part.replicas if n in known]
            )

    def readers(self, addr: ObjectAddress, record: ObjectRecord) -> Sequence[Node]:
        """The nodes to read `record` from, best first (ReplicatedReader.candidates)."""
        return self._reader.candidates(self.ring, addr.partition, record)

    async def delete(self, bucket: str, key: str) -> None:
        """Tombstone every replica (W must take it), then hide the object in the catalog."""
        record = await self.head(bucket, key)
        addr = self.address(bucket, key)
        version = self._clock.next()
        targets = self.readers(addr, record)

        async def tombstone(node: Node) -> bool:
            return await self._client.delete(node, addr, version)

        result = await fan_out(targets, tombstone, self._quorum, self._io_timeout)
        if not result.reached:
            self._metrics.quorum_failures.labels("delete").inc()
            raise QuorumNotReached(
                f"only {len(result.ok)} replicas took the delete; {self._quorum} needed"
            )
        repairs = [
            Repair(bucket, key, version, node.id, "missed-delete") for node, _ in result.failed
        ]
        if await self._catalog.remove_object(bucket, key, version, repairs) and record.manifest:
            await self.reclaim_parts(record.manifest)
        self.count_repairs(repairs)
