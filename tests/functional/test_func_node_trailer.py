"""A gateway write ends its body with a trailer vouching for the md5 and the block sums
(shardgate.vouch_trailer): the node keeps the md5 as the ETag and refuses a body whose block
sums differ, on the disk store and on the memory store."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from func_node_kit import Client, get, put

from shardgate.block_sums import BlockSums, blocks_digest
from shardgate.internal_api import TRAILER_HEADER
from shardgate.versions import VersionClock
from shardgate.vouch_trailer import TRAILER_KIND, encode_trailer

TRAILED = {TRAILER_HEADER: TRAILER_KIND}


def sums_of(data: bytes) -> str:
    sums = BlockSums()
    sums.update(data)
    return blocks_digest(sums.finish())


def leftovers(data_dir: Path) -> list[Path]:
    """Temp files and stored data the node kept (the disk store only)."""
    return [*data_dir.glob("tmp/*"), *data_dir.glob("objects/**/*.data")]


@pytest.mark.parametrize("size", [0, 1000, 2 * 1024 * 1024 + 7])
async def test_trailed_body_is_stored_without_its_trailer(
    node_client: Client, clock: VersionClock, size: int
) -> None:
    body = os.urandom(size)
    md5 = hashlib.md5(body).hexdigest()
    resp = await put(
        node_client, body + encode_trailer(md5, sums_of(body)), clock.next(), **TRAILED
    )
    assert resp.status == 201, await resp.text()
    created = await resp.json()
    assert (created["size"], created["etag"]) == (size, md5)
    resp = await get(node_client)
    assert resp.status == 200
    assert await resp.read() == body
    assert resp.headers["ETag"] == f'"{md5}"'


async def test_disk_node_takes_the_md5_from_the_trailer(
    node_client: Client, clock: VersionClock, store_kind: str
) -> None:
    """The disk store hashes no md5 of a trailed body: it keeps the one vouched for."""
    if store_kind != "disk":
        pytest.skip("the memory store hashes every body and refuses a wrong md5")
    body = os.urandom(5000)
    vouched = "ab" * 16
    resp = await put(
        node_client, body + encode_trailer(vouched, sums_of(body)), clock.next(), **TRAILED
    )
    assert resp.status == 201, await resp.text()
    assert (await resp.json())["etag"] == vouched


async def test_body_differing_from_its_trailer_is_refused_and_nothing_kept(
    node_client: Client, clock: VersionClock, tmp_path: Path
) -> None:
    body = os.urandom(3000)
    damaged = bytes([body[0] ^ 1]) + body[1:]
    trailer = encode_trailer(hashlib.md5(body).hexdigest(), sums_of(body))
    resp = await put(node_client, damaged + trailer, clock.next(), **TRAILED)
    assert resp.status == 400
    assert (await resp.json())["error"]["code"] == "BadDigest"
    assert (await get(node_client)).status == 404
    assert leftovers(tmp_path) == []
    metrics = await (await node_client.get("/metrics")).text()
    damaged = 'shardgate_node_commits_total{kind="version",result="damaged"} 1.0'
    assert damaged in metrics.splitlines()


async def test_right_md5_with_wrong_block_sums_is_refused(
    node_client: Client, clock: VersionClock, tmp_path: Path
) -> None:
    body = os.urandom(3000)
    trailer = encode_trailer(hashlib.md5(body).hexdigest(), sums_of(body[::-1]))
    resp = await put(node_client, body + trailer, clock.next(), **TRAILED)
    assert resp.status == 400
    assert (await resp.json())["error"]["code"] == "BadDigest"
    assert (await get(node_client)).status == 404
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize(
    ("body", "headers", "code"),
    [
        (b"too short", TRAILED, "IncompleteBody"),
        (b"x" * 100, {TRAILER_HEADER: "sha1"}, "BadRequest"),
    ],
)
async def test_missing_or_unknown_trailer_is_refused(
    node_client: Client,
    clock: VersionClock,
    tmp_path: Path,
    body: bytes,
    headers: dict[str, str],
    code: str,
) -> None:
    resp = await put(node_client, body, clock.next(), **headers)
    assert resp.status == 400
    assert (await resp.json())["error"]["code"] == code
    assert (await get(node_client)).status == 404
    assert leftovers(tmp_path) == []
