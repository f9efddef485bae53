"""Rows to records and back, for every catalog table; the one statement two tables need."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Any

from gateway.catalog import ApiKeyRecord, BucketRecord, ObjectRecord, PartRecord, UploadRecord

_UPSERT = """
INSERT INTO objects
    (bucket, key, version, size, etag, content_type, replicas, user_meta, sha256, manifest)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (bucket, key) DO UPDATE SET
    version = excluded.version, size = excluded.size, etag = excluded.etag,
    content_type = excluded.content_type, replicas = excluded.replicas,
    user_meta = excluded.user_meta, sha256 = excluded.sha256, manifest = excluded.manifest,
    deleted = 0
WHERE excluded.version > objects.version
"""
# A deleted object keeps its row (deleted = 1, version = the delete's) so that an older write
# finishing late cannot bring it back; create-only writes may replace only such a row.
_CREATE = _UPSERT + " AND objects.deleted = 1"
OBJECT_COLUMNS = (
    "bucket, key, version, size, etag, content_type, replicas, user_meta, sha256, manifest"
)


def bucket_from_row(row: tuple[str, float, str]) -> BucketRecord:
    name, created, policy_json = row
    policy = json.loads(policy_json)
    return BucketRecord(
        name=name,
        created=created,
        max_object_size=policy.get("max_object_size"),
        allowed_types=tuple(policy.get("allowed_types", ())),
        public_read=bool(policy.get("public_read", False)),
        cors_origins=tuple(policy.get("cors_origins", ())),
        mirror=bool(policy.get("mirror", False)),
    )


def api_key_from_row(
    row: tuple[str, str, str, str, str | None, float, float | None],
) -> ApiKeyRecord:
    key_id, name, sha256, rights, buckets, created, revoked = row
    return ApiKeyRecord(
        id=key_id,
        name=name,
        sha256=sha256,
        rights=tuple(json.loads(rights)),
        buckets=None if buckets is None else tuple(json.loads(buckets)),
        created=created,
        revoked=revoked,
    )


def upsert_object(db: sqlite3.Connection, record: ObjectRecord, *, create_only: bool) -> bool:
    manifest = [part_values(part) for part in record.manifest]
    values = (
        record.bucket,
        record.key,
        record.version,
        record.size,
        record.etag,
        record.content_type,
        json.dumps(list(record.replicas)),
        json.dumps(dict(record.user_meta)),
        record.sha256,
        json.dumps(manifest) if manifest else None,
    )
    return db.execute(_CREATE if create_only else _UPSERT, values).rowcount > 0


def object_from_row(
    row: tuple[str, str, str, int, str, str, str, str, str | None, str | None],
) -> ObjectRecord:
    bucket, key, version, size, etag, content_type, replicas, user_meta, sha256, manifest = row
    return ObjectRecord(
        bucket=bucket,
        key=key,
        version=version,
        size=size,
        etag=etag,
        content_type=content_type,
        replicas=tuple(json.loads(replicas)),
        user_meta=json.loads(user_meta),
        sha256=sha256,
        manifest=tuple(part_from_row(values) for values in json.loads(manifest))
        if manifest
        else (),
    )


def part_values(part: PartRecord) -> tuple[str, int, str, int, str, str]:
    return (
        part.upload_id,
        part.part_number,
        part.version,
        part.size,
        part.etag,
        json.dumps(part.replicas),
    )


def part_from_row(row: Sequence[Any]) -> PartRecord:
    upload_id, number, version, size, etag, replicas = row
    return PartRecord(upload_id, number, version, size, etag, tuple(json.loads(replicas)))


def upload_from_row(row: Sequence[Any]) -> UploadRecord:
    upload_id, bucket, key, content_type, user_meta, created, expires, state = row
    return UploadRecord(
        upload_id, bucket, key, content_type, json.loads(user_meta), created, expires, state
    )
