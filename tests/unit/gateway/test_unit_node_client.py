"""gateway.nodes.NodeClient over the lean client, against a raw loopback server: how its
errors map for the callers (unavailable before anything reached the node, failed after), and
which exchanges the per-wait limit bounds and which only their own deadline."""

from __future__ import annotations

import asyncio
import json

import pytest
from raw_node import Handler, answer, read_request, serving

from gateway.node_http import NodeConnections
from gateway.nodes import NodeClient, NodeFailed, NodeUnavailable, ObjectAddress
from ring import Node

ADDR = ObjectAddress(partition=3, obj_hash="ab" * 16, bucket="b", key="k")


def client(io_timeout: float = 5.0, connect_timeout: float = 1.0) -> NodeClient:
    connections = NodeConnections(connect_timeout=connect_timeout, on_open=lambda: None)
    return NodeClient(
        connections, b"s" * 32, connect_timeout=connect_timeout, io_timeout=io_timeout
    )


Seen = list[tuple[str, dict[str, str], bytes]]


def slow_json(
    delay: float, status: int = 200, payload: object = None, seen: Seen | None = None
) -> Handler:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            (seen if seen is not None else []).append(await read_request(reader))
            await asyncio.sleep(delay)
            body = b"" if payload is None else json.dumps(payload).encode()
            writer.write(answer(status, body))

    return handler


async def test_a_call_may_outlast_the_io_timeout_but_not_its_own_deadline() -> None:
    # A sweep walks a whole disk, a push sends a whole object, before the node answers.
    seen: Seen = []
    async with serving(slow_json(0.6, payload={"done": 7}, seen=seen)) as (_, url):
        node = Node("n1", url)
        assert await client(io_timeout=0.2).call(node, "POST", "/x", {"a": 1}, within=5) == {
            "done": 7
        }
        assert json.loads(seen[0][2]) == {"a": 1}
        with pytest.raises(NodeFailed):
            await client(io_timeout=5).call(node, "GET", "/x", within=0.2)
        assert seen[-1][2] == b""  # no body: not a JSON null


async def test_other_exchanges_fail_once_the_node_is_silent_for_the_io_timeout() -> None:
    async with serving(slow_json(0.6, payload={"discarded": True})) as (_, url):
        with pytest.raises(NodeFailed, match="TimeoutError"):
            await client(io_timeout=0.2).discard(Node("n1", url), ADDR, "v1")


async def test_errors_map_to_unavailable_before_the_node_and_failed_after() -> None:
    async with serving() as (_, url):
        pass
    with pytest.raises(NodeUnavailable):
        await client().status(Node("gone", url))
    async with serving(slow_json(0, status=500, payload={"error": "disk"})) as (_, url):
        with pytest.raises(NodeFailed) as failed:
            await client().status(Node("n1", url))
        assert failed.value.status == 500
    async with serving(slow_json(0, status=404)) as (_, url):
        await client().drop_pending(Node("n1", url), "u1")  # an empty answer is no error


async def test_a_read_cut_short_fails_from_the_stream() -> None:
    seen: Seen = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await read_request(reader))
        writer.write(answer(200, b"a" * 5000, "ETag: e1\r\n")[:-1000])
        await writer.drain()

    async with serving(handler) as (_, url):
        stream = await client().open_read(Node("n1", url), ADDR, min_version="v1", headers={})
        assert (stream.status, stream.headers["etag"]) == (200, "e1")
        got = bytearray()
        with pytest.raises(NodeFailed, match="read broke"):
            async for chunk in stream.chunks(1024):
                got += chunk
        assert got == b"a" * 4000
        stream.close()
        first, headers, _ = seen[0]
        assert first.startswith("GET /internal/v1/objects/3/")
        assert headers["x-shardgate-min-version"] == "v1"


async def test_a_commit_copy_or_hash_may_outlast_the_io_timeout_by_the_upload_size() -> None:
    # The node copies a whole upload to a peer, or hashes it, before it says a word: a big one
    # takes longer than node_io_timeout of silence, and only a node slower than the floor
    # rate for that size fails it.
    copied = {"status": 201, "answer": {"etag": "e1", "size": 3}}
    quick = client(io_timeout=0.2, connect_timeout=0.1)
    async with serving(slow_json(0.6, payload=copied)) as (_, url):
        node, peer = Node("n1", url), Node("n2", "http://127.0.0.1:9")
        ack = await quick.copy_pending(node, "u1", "v1", peer, size=1 << 20)
        assert (ack.node_id, ack.etag) == ("n2", "e1")
        with pytest.raises(NodeFailed, match="TimeoutError"):
            await quick.copy_pending(node, "u1", "v1", peer, size=0)
    async with serving(slow_json(0.6, payload={"upload_id": "u1", "sha256": "ff"})) as (_, url):
        node = Node("n1", url)
        found = await quick.pending(node, "u1", sha256=True, size=1 << 20)
        assert found == {"upload_id": "u1", "sha256": "ff"}
        with pytest.raises(NodeFailed, match="TimeoutError"):
            await quick.pending(node, "u1", sha256=True, size=0)
        with pytest.raises(NodeFailed, match="TimeoutError"):
            await quick.pending(node, "u1", size=1 << 30)


async def test_a_repair_push_may_outlast_the_io_timeout_by_the_objects_size() -> None:
    seen: Seen = []
    quick = client(io_timeout=0.2, connect_timeout=0.1)
    pushed = {"version": "v2", "status": 201, "answer": {}}
    async with serving(slow_json(0.6, payload=pushed, seen=seen)) as (_, url):
        node, peer = Node("n1", url), Node("n2", "http://127.0.0.1:9")
        assert await quick.push(node, ADDR, "v1", peer, size=1 << 20) == 201
        first, _, body = seen[0]
        assert first.startswith(f"POST /internal/v1/objects/3/{ADDR.obj_hash}/push ")
        assert json.loads(body) == {"peer_url": peer.url, "version": "v1"}
        with pytest.raises(NodeFailed, match="TimeoutError"):
            await quick.push(node, ADDR, "v1", peer, size=0)


@pytest.mark.parametrize(
    ("status", "extra", "held"),
    [
        (200, "", 4096),
        (404, "X-Shardgate-Tombstone: v3\r\n", 0),
        (404, "X-Shardgate-Tombstone: v0\r\n", None),  # deleted, but before that version
        (404, "X-Shardgate-Version: v0\r\n", None),
    ],
)
async def test_the_size_a_node_holds_comes_from_a_head_at_the_wanted_version(
    status: int, extra: str, held: int | None
) -> None:
    seen: Seen = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await read_request(reader))
        writer.write(f"HTTP/1.1 {status} X\r\nContent-Length: 4096\r\n{extra}\r\n".encode())
        await writer.drain()

    async with serving(handler) as (_, url):
        assert await client().held_size(Node("n1", url), ADDR, "v1") == held
    first, headers, _ = seen[0]
    assert first.startswith(f"HEAD /internal/v1/objects/3/{ADDR.obj_hash} ")
    assert headers["x-shardgate-min-version"] == "v1"


async def test_a_node_silent_on_a_head_fails_it_within_the_short_bound() -> None:
    async with serving(slow_json(0.6)) as (_, url):
        with pytest.raises(NodeFailed, match="TimeoutError"):
            await client(io_timeout=0.2, connect_timeout=0.1).held_size(Node("n1", url), ADDR, "v1")
