"""The catalog contract: what is visible, where its replicas are, and what needs repair.

An object is visible once `commit_object` returns; commits are last-writer-wins by version,
so a slow older write can never replace a newer one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

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
class ObjectRecord:
    bucket: str
    key: str
    version: str
    size: int
    etag: str
    content_type: str
    replicas: tuple[str, ...]
    user_meta: Mapping[str, str] = field(default_factory=dict)

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
            "replicas": list(self.replicas),
            "metadata": dict(self.user_meta),
            "mirror": {"state": "off", "url": None},
        }


@dataclass(frozen=True)
class Repair:
    """A replica that should hold a version and may not: it missed the write or a handoff has it."""

    bucket: str
    key: str
    version: str
    node_id: str
    reason: str


class Catalog(Protocol):
    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def ping(self) -> None: ...

    async def put_bucket(self, bucket: BucketRecord) -> BucketRecord: ...

    async def get_bucket(self, name: str) -> BucketRecord | None: ...

    async def commit_object(self, record: ObjectRecord, repairs: Sequence[Repair] = ()) -> bool:
        """Make `record` visible unless a newer version is; True if it became current."""

    async def get_object(self, bucket: str, key: str) -> ObjectRecord | None: ...

    async def remove_object(
        self, bucket: str, key: str, version: str, repairs: Sequence[Repair] = ()
    ) -> bool:
        """Hide the object unless a version newer than the delete's is current."""

    async def pending_repairs(self, limit: int) -> list[Repair]: ...
