"""The catalog contract: what is visible, where its replicas are, and what needs repair.

An object is visible once `commit_object` returns; commits are last-writer-wins by version,
so a slow older write can never replace a newer one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from shardgate.versions import version_to_timestamp


@dataclass(frozen=True)
class BucketRecord:
    name: str
    created: float
    max_object_size: int | None = None
    allowed_types: tuple[str, ...] = ()
    public_read: bool = False
    cors_origins: tuple[str, ...] = ()
    mirror: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "created": self.created,
            "max_object_size": self.max_object_size,
            "allowed_types": list(self.allowed_types),
            "public_read": self.public_read,
            "cors_origins": list(self.cors_origins),
            "mirror": self.mirror,
        }


@dataclass(frozen=True)
class PartRecord:
    """One stored part of a multipart upload (itself a replicated internal object)."""

    upload_id: str
    part_number: int
    version: str
    size: int
    etag: str
    replicas: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"part_number": self.part_number, "size": self.size, "etag": self.etag}


@dataclass(frozen=True)
class UploadRecord:
    upload_id: str
    bucket: str
    key: str
    content_type: str
    user_meta: Mapping[str, str]
    created: float
    expires: float
    state: str = "open"  # open, staging (a form's file), completed, aborted, expired


@dataclass(frozen=True)
class MirrorStatus:
    """Where an object's version stands with the S3 mirror: pending, synced, failed (or off)."""

    state: str = "off"
    url: str | None = None
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        shown: dict[str, Any] = {"state": self.state, "url": self.url}
        if self.error is not None:
            shown["error"] = self.error
        return shown


@dataclass(frozen=True)
class ObjectRecord:
    bucket: str
    key: str
    version: str
    size: int
    etag: str
    content_type: str
    replicas: tuple[str, ...]
    user_meta: Mapping[str, str] = field(default_factory=dict)
    sha256: str | None = None
    manifest: tuple[PartRecord, ...] = ()  # a completed multipart upload: its parts, in order
    mirror: MirrorStatus = field(default_factory=MirrorStatus, compare=False)

    @property
    def modified(self) -> float:
        return version_to_timestamp(self.version)

    def to_json(self) -> dict[str, Any]:
        return {
            "bucket": self.bucket,
            "key": self.key,
            "size": self.size,
            "etag": self.etag,
            "content_type": self.content_type,
            "version": self.version,
            # A manifest object's bytes are its parts': name the nodes that hold them.
            "replicas": list(
                self.replicas or dict.fromkeys(n for p in self.manifest for n in p.replicas)
            ),
            "metadata": dict(self.user_meta),
            "sha256": self.sha256,
            "mirror": self.mirror.to_json(),
        }


@dataclass(frozen=True)
class ApiKeyRecord:
    """An API key as stored: only the sha256 of the secret is kept."""

    id: str
    name: str
    sha256: str
    rights: tuple[str, ...]
    buckets: tuple[str, ...] | None
    created: float
    revoked: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "rights": list(self.rights),
            "buckets": None if self.buckets is None else list(self.buckets),
            "created": self.created,
            "revoked": self.revoked,
        }


BucketDeletion = Literal["deleted", "missing", "not_empty"]
UploadEnding = Literal["ended", "not_open", "parts_changed"]


@dataclass(frozen=True)
class PendingRecord:
    """A presigned direct upload: where it goes, until when it may be committed, and to what."""

    upload_id: str
    bucket: str
    key: str
    node_id: str
    created: float
    expires: float  # commit deadline: token expiry plus the pending grace
    committed_version: str | None = None


@dataclass(frozen=True)
class Repair:
    """A replica that should hold a version and may not: it missed the write or a handoff has it."""

    bucket: str
    key: str
    version: str
    node_id: str
    reason: str


class RepairLog(Protocol):
    async def add_repairs(self, repairs: Sequence[Repair]) -> None:
        """Record replicas that missed a version their write was answered without."""


class Catalog(RepairLog, Protocol):
    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def ping(self) -> None: ...

    async def put_bucket(self, bucket: BucketRecord) -> BucketRecord: ...

    async def get_bucket(self, name: str) -> BucketRecord | None: ...

    async def list_buckets(self) -> list[BucketRecord]: ...

    async def delete_bucket(self, name: str) -> BucketDeletion:
        """Delete the bucket only if it holds no object (checked in the same transaction)."""

    async def commit_object(
        self,
        record: ObjectRecord,
        repairs: Sequence[Repair] = (),
        *,
        create_only: bool = False,
        settles: str | None = None,
    ) -> bool:
        """Make `record` visible unless a newer version is (or, create_only, any version is);
        True if it became current. `settles` marks that pending upload committed, atomically."""

    async def get_object(self, bucket: str, key: str) -> ObjectRecord | None: ...

    async def list_objects(
        self, bucket: str, *, prefix: str, after: str, limit: int
    ) -> list[ObjectRecord]:
        """Objects with keys starting with `prefix` and sorting after `after`, in key order."""

    async def add_upload(self, record: UploadRecord) -> None: ...

    async def get_upload(self, upload_id: str) -> UploadRecord | None: ...

    async def list_uploads(self, bucket: str, now: float) -> list[UploadRecord]:
        """Uploads open and not yet expired at `now`."""

    async def upload_with_parts(
        self, upload_id: str
    ) -> tuple[UploadRecord | None, list[PartRecord]]:
        """The upload and its parts, read together (one consistent view)."""

    async def expired_uploads(self, now: float) -> list[UploadRecord]: ...

    async def put_part(self, part: PartRecord, now: float) -> tuple[bool, PartRecord | None]:
        """Record a part if its upload is still open (else False) unless a newer version of it
        is; also returns the version to reclaim (the one replaced, or this one if it lost)."""

    async def list_parts(self, upload_id: str) -> list[PartRecord]: ...

    async def end_upload(
        self, upload_id: str, state: str, completed: ObjectRecord | None = None
    ) -> tuple[UploadEnding, list[PartRecord]]:
        """Close an open upload (completed, aborted, expired) and drop its part rows, returning
        them; a completed one publishes `completed` in the same transaction, provided its parts
        are still the current ones."""

    async def add_pending(self, record: PendingRecord) -> None: ...

    async def get_pending(self, upload_id: str) -> PendingRecord | None: ...

    async def latest_pending(self, bucket: str, key: str) -> PendingRecord | None: ...

    async def unsettled_pending(self, bucket: str, key_prefix: str) -> list[PendingRecord]:
        """Presigned uploads under a key prefix that no commit has settled yet."""

    async def settle_pending(self, upload_id: str, version: str) -> None: ...

    async def add_api_key(self, record: ApiKeyRecord) -> None: ...

    async def find_api_key(self, sha256: str) -> ApiKeyRecord | None: ...

    async def list_api_keys(self) -> list[ApiKeyRecord]: ...

    async def revoke_api_key(self, key_id: str, when: float) -> bool: ...

    async def remove_object(
        self, bucket: str, key: str, version: str, repairs: Sequence[Repair] = ()
    ) -> bool:
        """Hide the object unless a version newer than the delete's is current."""

    async def pending_repairs(self, limit: int) -> list[Repair]: ...

    async def resolve_repairs(self, repairs: Sequence[Repair]) -> None:
        """Forget these repairs (and older ones of the same replica): the node holds it now."""

    async def unwanted_replicas(self, replicas: Sequence[tuple[str, str, str]]) -> list[int]:
        """Indices of the (bucket, key, version) replicas that nothing in the catalog wants."""

    async def purge_ended(self, before: float) -> int:
        """Drop rows of uploads that ended (aborted, expired, commit window closed) before
        `before`; the number dropped."""

    async def count_repairs(self) -> int:
        """How many replicas wait for repair (the repair queue's depth)."""
