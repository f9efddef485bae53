"""Helpers for functional tests of one storage node app: signed requests to its internal API."""

from __future__ import annotations

from typing import Any

from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient

from ring import object_hash, partition_of
from shardgate.internal_api import (
    BUCKET_HEADER,
    KEY_HEADER,
    VERSION_HEADER,
    encode_key,
    object_path,
)
from shardgate.signing import sign_request

SECRET = b"functional-node-secret"
BUCKET = "photos"
KEY = "2024/héllo wörld?.jpg"
POWER = 8
Client = TestClient[Any, Any]


def signed(
    method: str, path: str, extra: dict[str, str] | None = None, now: float | None = None
) -> dict[str, str]:
    return {**sign_request(SECRET, method, path, now=now), **(extra or {})}


def locate(bucket: str = BUCKET, key: str = KEY) -> tuple[int, str, str]:
    """(partition, hash, object path) of bucket/key."""
    obj_hash = object_hash(bucket, key)
    partition = partition_of(obj_hash, POWER)
    return partition, obj_hash, object_path(partition, obj_hash)


def identity(version: str, bucket: str = BUCKET, key: str = KEY) -> dict[str, str]:
    return {BUCKET_HEADER: bucket, KEY_HEADER: encode_key(key), VERSION_HEADER: version}


async def put(
    client: Client, body: bytes, version: str, key: str = KEY, **extra: str
) -> ClientResponse:
    path = locate(key=key)[2]
    headers = signed("PUT", path, {**identity(version, key=key), **extra})
    return await client.put(path, data=body, headers=headers)


async def get(client: Client, method: str = "GET", key: str = KEY, **extra: str) -> ClientResponse:
    path = locate(key=key)[2]
    return await client.request(method, path, headers=signed(method, path, extra))
