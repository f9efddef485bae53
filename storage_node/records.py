"""What a node stores about each version: a frozen record that round-trips through JSON."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any


@dataclass(frozen=True)
class NewVersion:
    """What the writer of a version states before its bytes arrive."""

    bucket: str
    key: str
    version: str
    content_type: str = "application/octet-stream"
    user_meta: Mapping[str, str] = field(default_factory=dict)
    create_only: bool = False  # refuse to commit over a live version (If-None-Match: *)


@dataclass(frozen=True)
class PendingUpload:
    """A direct upload received with a token, or a peer's early copy of one, waiting for the
    gateway's commit."""

    upload_id: str
    bucket: str
    key: str
    partition: int
    obj_hash: str
    size: int
    etag: str
    sha256: str | None
    content_type: str
    head: str  # the first bytes, hex, so the gateway can check magic numbers
    received: float
    state: str = "received"  # or "published", "dropped"
    version: str = ""
    commit_by: float = 0.0  # the token's commit deadline: the sweeper's cue
    blocks: tuple[int, ...] = ()  # a CRC per storage_node.blocks.BLOCK_SIZE block
    block_sum: str = "crc32"  # which CRC; absent (the first format) means zlib's CRC-32
    source: str = ""  # on a peer holding an early copy: the node the client uploaded to
    copies: tuple[str, ...] = ()  # on that node: the peers that acknowledged an early copy

    def to_json(self) -> bytes:
        return json.dumps(vars(self), sort_keys=True).encode()  # asdict deep-copies: slow

    @classmethod
    def from_json(cls, raw: bytes) -> PendingUpload:
        data: dict[str, Any] = json.loads(raw)
        data["blocks"] = tuple(data.get("blocks") or ())
        data["copies"] = tuple(data.get("copies") or ())
        return cls(**data)


@dataclass(frozen=True)
class Vouched:
    """What a peer copying a version it holds vouches for: the md5 and a digest of the CRC-32C
    block sums; the receiver compares block sums instead of hashing the body with md5 again."""

    etag: str
    blocks_digest: str


@dataclass(frozen=True)
class ObjectMeta:
    """One stored version of an object, or its tombstone."""

    bucket: str
    key: str
    version: str
    size: int
    etag: str
    content_type: str = "application/octet-stream"
    user_meta: Mapping[str, str] = field(default_factory=dict)
    tombstone: bool = False
    blocks: tuple[int, ...] = ()  # a CRC per block; versions written before checksums have none
    block_sum: str = "crc32"  # which CRC; absent (the first format) means zlib's CRC-32
    upload_id: str = ""  # the direct upload published as this version: a retried commit's cue

    def to_json(self) -> bytes:
        data = vars(self)  # asdict deep-copies: slow
        if not self.upload_id:  # only direct uploads name one; the rest read as they always did
            data = {name: value for name, value in data.items() if name != "upload_id"}
        return json.dumps(data, sort_keys=True).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> ObjectMeta:
        data: dict[str, Any] = json.loads(raw)
        data["user_meta"] = dict(data.get("user_meta") or {})
        data["blocks"] = tuple(data.get("blocks") or ())
        # A field a later release adds is skipped, so a node rolled back still reads the file.
        return cls(**{name: data[name] for name in _META_FIELDS if name in data})

    @classmethod
    def tombstone_of(cls, bucket: str, key: str, version: str) -> ObjectMeta:
        return cls(bucket=bucket, key=key, version=version, size=0, etag="", tombstone=True)

    def listing_entry(self) -> dict[str, Any]:
        return {
            "bucket": self.bucket,
            "key": self.key,
            "version": self.version,
            "etag": self.etag,
            "size": self.size,
            "tombstone": self.tombstone,
        }


_META_FIELDS = tuple(f.name for f in fields(ObjectMeta))
