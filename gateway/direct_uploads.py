"""Presigned direct uploads and downloads: tokens out; commits that verify on the node, place
the upload on its replicas (gateway.pending_placement) and then record the object. The gateway
carries none of the bytes."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from gateway.catalog import Catalog, ObjectRecord, PartRecord, PendingRecord, UploadRecord
from gateway.content_types import check_head, check_type
from gateway.errors import (
    BadDigest,
    EntityTooLarge,
    GatewayError,
    IncompleteBody,
    InvalidArgument,
    NoSuchUpload,
    QuorumNotReached,
    ServiceUnavailable,
    UploadConflict,
)
from gateway.node_health import NodeHealth
from gateway.nodes import NodeClient, NodeError
from gateway.object_service import ObjectService
from gateway.pending_placement import PendingPlacement
from gateway.replicated_write import ReplicatedWriter
from ring import Node
from shardgate.config import GatewayConfig, signing_kid
from shardgate.internal_api import PARTS_BUCKET, part_key
from shardgate.tokens import Claims, issue

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Presigned:
    url: str
    method: str
    expires_at: float
    upload_id: str | None
    headers: dict[str, str] = field(default_factory=dict)
    fields: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "method": self.method,
            "headers": self.headers,
            "fields": self.fields,
            "expires_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.expires_at)),
            "upload_id": self.upload_id,
        }


@dataclass(frozen=True)
class PresignRequest:
    bucket: str
    key: str
    method: str
    expires_in: float | None = None
    max_size: int | None = None
    size: int | None = None
    content_type: str | None = None
    sha256: str | None = None


class DirectUploads:
    def __init__(
        self,
        *,
        config: GatewayConfig,
        objects: ObjectService,
        catalog: Catalog,
        client: NodeClient,
        health: NodeHealth,
        writer: ReplicatedWriter,
    ) -> None:
        self._config = config
        self._objects = objects
        self._catalog = catalog
        self._client = client
        self._health = health
        self._placement = PendingPlacement(config, objects, client, health, writer)
        self._commits: dict[str, asyncio.Lock] = {}

    def _lifetime(self, asked: float | None) -> float:
        lifetime = self._config.token_lifetime if asked is None else asked
        if not 1 <= lifetime <= self._config.token_max_lifetime:
            raise InvalidArgument(
                f"expires_in must be 1 to {self._config.token_max_lifetime:.0f} seconds"
            )
        return lifetime

    def _sign(self, claims: Claims) -> str:
        return issue(claims, self._config.token_keys[claims.kid])

    def _first_up(self, nodes: Iterable[Node]) -> Node:
        for node in nodes:
            if self._health.is_up(node.id):
                return node
        raise ServiceUnavailable("no replica node is up to take a direct request")

    async def presign(self, req: PresignRequest) -> Presigned:
        if req.method not in ("PUT", "GET"):
            raise InvalidArgument("method must be PUT (also for browser form POSTs) or GET")
        expires = time.time() + self._lifetime(req.expires_in)
        addr = self._objects.address(req.bucket, req.key)
        ring = self._objects.ring
        base = Claims(
            kid=signing_kid(self._config),
            node="",
            bucket=req.bucket,
            key=req.key,
            method=req.method,
            upload_id=secrets.token_hex(12),
            expires=int(expires),
            partition=addr.partition,
            origins=(await self._objects.bucket(req.bucket)).cors_origins,
        )
        path = f"/direct/v1/{req.bucket}/{quote(req.key, safe='/')}"
        if req.method == "GET":
            record = await self._objects.head(req.bucket, req.key)
            node = self._first_up(self._objects.readers(addr, record))
            claims = dataclasses.replace(base, node=node.id, min_version=record.version)
            return Presigned(f"{node.url}{path}?token={self._sign(claims)}", "GET", expires, None)
        policy = await self._objects.bucket(req.bucket)
        limit = self._objects.limit_for(policy)
        if (req.size or 0) > limit or (req.max_size or 0) > limit:
            raise EntityTooLarge(f"objects in this bucket may be at most {limit} bytes")
        if req.content_type is not None:
            check_type(req.content_type, policy.allowed_types)
        node = self._first_up(ring.preference(addr.partition))
        claims = dataclasses.replace(
            base,
            node=node.id,
            max_size=limit if req.max_size is None else req.max_size,
            size=req.size,
            content_types=(req.content_type,) if req.content_type else policy.allowed_types,
            sha256=req.sha256,
            commit_by=int(expires + self._config.pending_grace),
        )
        token = self._sign(claims)
        await self._catalog.add_pending(
            PendingRecord(
                claims.upload_id,
                req.bucket,
                req.key,
                node.id,
                time.time(),
                expires + self._config.pending_grace,
            )
        )
        headers = {"Content-Type": req.content_type} if req.content_type else {}
        return Presigned(
            f"{node.url}{path}?token={token}",
            "PUT",
            expires,
            claims.upload_id,
            headers,
            {"token": token},
        )

    async def presign_part(
        self,
        upload: UploadRecord,
        number: int,
        *,
        expires_in: float | None,
        size: int | None,
        max_size: int,
    ) -> Presigned:
        """A direct-to-node URL for one part; the gateway adopts the part when it next looks at
        the upload (progress or complete)."""
        expires = time.time() + self._lifetime(expires_in)
        key = part_key(upload.upload_id, number)
        addr = self._objects.address(PARTS_BUCKET, key)
        node = self._first_up(self._objects.ring.preference(addr.partition))
        claims = Claims(
            kid=signing_kid(self._config),
            node=node.id,
            bucket=PARTS_BUCKET,
            key=key,
            method="PUT",
            upload_id=secrets.token_hex(12),
            expires=int(expires),
            partition=addr.partition,
            max_size=max_size,
            size=size,
            origins=(await self._objects.bucket(upload.bucket)).cors_origins,
            part=number,
            # A part is adopted while its upload is open, so the node keeps it that long.
            commit_by=int(max(upload.expires, expires + self._config.pending_grace)),
        )
        token = self._sign(claims)
        grace = expires + self._config.pending_grace
        await self._catalog.add_pending(
            PendingRecord(claims.upload_id, PARTS_BUCKET, key, node.id, time.time(), grace)
        )
        url = f"{node.url}/direct/v1/{PARTS_BUCKET}/{key}?token={token}"
        return Presigned(url, "PUT", expires, None, {}, {"token": token})

    async def adopt_parts(
        self, upload_id: str, max_size: int, record: Callable[[PartRecord], Awaitable[None]]
    ) -> int:
        """Replicate and publish the parts that arrived at nodes directly, handing each to
        `record`; the number adopted. Parts not uploaded yet (or on a node that is down) wait."""
        adopted = 0
        for pending in await self._catalog.unsettled_pending(PARTS_BUCKET, f"{upload_id}/"):
            lock = self._commits.setdefault(pending.upload_id, asyncio.Lock())
            async with lock:
                fresh = await self._catalog.get_pending(pending.upload_id)
                if fresh is None or fresh.committed_version is not None:
                    continue
                source = self._objects.ring.node(pending.node_id)
                try:
                    received = await self._client.pending(source, pending.upload_id)
                except NodeError as exc:
                    log.warning("part upload %s not checked: %s", pending.upload_id, exc)
                    continue
                if received is None:
                    continue
                if received["size"] > max_size:
                    await self._placement.drop(source, pending.upload_id, received)
                    continue
                try:
                    version, held, _ = await self._placement.place(pending, source, received)
                except (NodeError, QuorumNotReached) as exc:
                    log.warning("part upload %s not adopted yet: %s", pending.upload_id, exc)
                    continue
                number = int(pending.key.rsplit("/", 1)[1])
                await record(
                    PartRecord(upload_id, number, version, received["size"], received["etag"], held)
                )
                await self._catalog.settle_pending(pending.upload_id, version)
                adopted += 1
        return adopted

    async def commit(
        self,
        bucket: str,
        key: str,
        *,
        upload_id: str | None,
        size: int,
        md5: str | None,
        sha256: str | None,
    ) -> ObjectRecord:
        pending = await (
            self._catalog.get_pending(upload_id)
            if upload_id
            else self._catalog.latest_pending(bucket, key)
        )
        if pending is None or (pending.bucket, pending.key) != (bucket, key):
            raise NoSuchUpload(f"no presigned upload for {bucket}/{key}")
        # Two commits of one upload must not publish it under two versions.
        lock = self._commits.setdefault(pending.upload_id, asyncio.Lock())
        try:
            async with lock:
                return await self._commit(pending, size, md5, sha256)
        except NodeError as exc:
            raise ServiceUnavailable(
                f"a replica node could not take the commit; retry: {exc}"
            ) from exc
        finally:
            if not lock.locked():
                self._commits.pop(pending.upload_id, None)

    async def _commit(
        self, pending: PendingRecord, size: int, md5: str | None, sha256: str | None
    ) -> ObjectRecord:
        bucket, key = pending.bucket, pending.key
        fresh = await self._catalog.get_pending(pending.upload_id)
        if fresh is not None and fresh.committed_version is not None:
            record = await self._catalog.get_object(bucket, key)
            if record is not None and record.version == fresh.committed_version:
                return record
            raise UploadConflict("this upload was committed and the object has since changed")
        ring = self._objects.ring
        source = ring.node(pending.node_id)
        if time.time() > pending.expires:
            await self._placement.drop_on(source, pending.upload_id)
            raise UploadConflict("the window to commit this upload has passed; upload again")
        received = await self._client.pending(source, pending.upload_id)
        if received is not None and sha256 is not None and received["sha256"] is None:
            # Hashed on the node now, for as long as its size needs.
            received = await self._client.pending(
                source, pending.upload_id, sha256=True, size=received["size"]
            )
        if received is None:
            raise NoSuchUpload("the node holds nothing for this upload; was it uploaded?")
        await self._verify(pending, received, size, md5, sha256, source)

        version, held, repairs = await self._placement.place(pending, source, received)
        record = ObjectRecord(
            bucket=bucket,
            key=key,
            version=version,
            size=received["size"],
            etag=received["etag"],
            content_type=received["content_type"],
            replicas=held,
            sha256=received["sha256"],
        )
        previous = await self._catalog.get_object(bucket, key)
        if (
            await self._catalog.commit_object(record, repairs, settles=pending.upload_id)
            and previous
        ):
            await self._objects.retire(previous, record)
        self._objects.count_repairs(repairs)
        return await self._objects.as_published(record)

    async def _verify(
        self,
        pending: PendingRecord,
        received: dict[str, Any],
        size: int,
        md5: str | None,
        sha256: str | None,
        source: Node,
    ) -> None:
        """The client's statement, then the bucket's policy; a failed check drops the upload."""
        try:
            if received["size"] != size:
                raise IncompleteBody(f"the node received {received['size']} bytes, not {size}")
            if md5 is not None and md5 != received["etag"]:
                raise BadDigest("the upload's md5 differs from the one stated")
            if sha256 is not None and sha256 != received["sha256"]:
                raise BadDigest("the upload's sha256 differs from the one stated")
            policy = await self._objects.bucket(pending.bucket)
            if received["size"] > self._objects.limit_for(policy):
                raise EntityTooLarge("the upload exceeds the bucket's size limit")
            check_type(received["content_type"], policy.allowed_types)
            check_head(received["content_type"], bytes.fromhex(received["head"]))
        except GatewayError:
            await self._placement.drop(source, pending.upload_id, received)
            raise
