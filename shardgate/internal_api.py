"""The gateway-to-node wire protocol: paths and headers, named once for both sides."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import quote, unquote

PREFIX = "/internal/v1"
BUCKET_HEADER = "X-Shardgate-Bucket"
KEY_HEADER = "X-Shardgate-Key"
VERSION_HEADER = "X-Shardgate-Version"
MIN_VERSION_HEADER = "X-Shardgate-Min-Version"
TOMBSTONE_HEADER = "X-Shardgate-Tombstone"
# A peer copying a version it holds vouches for its md5 and block checksums (storage_node.blocks)
VOUCHED_ETAG_HEADER = "X-Shardgate-Vouched-Etag"
VOUCHED_BLOCKS_HEADER = "X-Shardgate-Vouched-Blocks"
# A gateway write vouches the same way in the body's last bytes (shardgate.vouch_trailer)
TRAILER_HEADER = "X-Shardgate-Trailer"
# An early copy of a direct upload, streamed to a peer while the client sends it
PARTITION_HEADER = "X-Shardgate-Partition"
COMMIT_BY_HEADER = "X-Shardgate-Commit-By"
SOURCE_HEADER = "X-Shardgate-Source"
META_PREFIX = "X-Shardgate-Meta-"
PUBLIC_META_PREFIX = "X-Meta-"
# Multipart parts and staged form files are internal objects in this bucket: not a valid user
# bucket name, so part keys never collide with objects.
PARTS_BUCKET = "_parts"
SWEEP_PATH = PREFIX + "/sweep"


def part_key(upload_id: str, part_number: int) -> str:
    return f"{upload_id}/{part_number}"


def pending_path(upload_id: str, action: str = "") -> str:
    return f"{PREFIX}/pending/{upload_id}" + (f"/{action}" if action else "")


def put_headers(
    bucket: str,
    key: str,
    version: str,
    content_type: str,
    user_meta: Mapping[str, str],
    size: int | None,
) -> dict[str, str]:
    """Headers of an internal PUT that stores one version (from the gateway or a peer node)."""
    headers = {
        BUCKET_HEADER: bucket,
        KEY_HEADER: encode_key(key),
        VERSION_HEADER: version,
        "Content-Type": content_type,
        **meta_headers(user_meta, META_PREFIX),
    }
    if size is not None:
        headers["Content-Length"] = str(size)
    return headers


def object_path(partition: int, obj_hash: str) -> str:
    return f"{PREFIX}/objects/{partition}/{obj_hash}"


def version_path(partition: int, obj_hash: str, version: str) -> str:
    return f"{object_path(partition, obj_hash)}/versions/{version}"


def partition_path(partition: int) -> str:
    return f"{PREFIX}/partitions/{partition}"


def encode_key(key: str) -> str:
    """Keys are UTF-8 and may hold anything printable; headers carry them percent-encoded."""
    return quote(key, safe="")


def decode_key(raw: str) -> str:
    return unquote(raw, errors="strict")


def meta_headers(user_meta: Mapping[str, str], prefix: str) -> dict[str, str]:
    return {f"{prefix}{name}": value for name, value in user_meta.items()}


def meta_from_headers(headers: Mapping[str, str], prefix: str) -> dict[str, str]:
    """User metadata names are case-insensitive on the wire, so they are stored lower-case."""
    size = len(prefix)
    lowered = prefix.lower()
    return {k[size:].lower(): v for k, v in headers.items() if k.lower().startswith(lowered)}
