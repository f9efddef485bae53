"""A signed HTTP client for the storage nodes' internal API, returning typed results.

Errors come in two kinds: NodeUnavailable (nothing reached the node: connect failed or it
reset at once) and NodeFailed (the node answered, or broke, mid-request).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterable, AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

from multidict import CIMultiDictProxy

from gateway.http_wire import Broken
from gateway.node_http import NodeConnections, NodeResponse, Unreachable
from ring import Node
from shardgate import request_id
from shardgate.config import MiB
from shardgate.internal_api import (
    BUCKET_HEADER,
    KEY_HEADER,
    MIN_VERSION_HEADER,
    TOMBSTONE_HEADER,
    TRAILER_HEADER,
    VERSION_HEADER,
    encode_key,
    object_path,
    pending_path,
    put_headers,
    version_path,
)
from shardgate.signing import sign_request
from shardgate.vouch_trailer import TRAILER_KIND, vouched_length

# A node copying a whole upload or object to a peer, or hashing it, says nothing until it is
# done; one that goes slower than this is taken for stuck (a 5 GiB upload: 85 minutes).
SLOWEST_RATE = 1 * MiB  # bytes per second


class NodeError(Exception):
    def __init__(self, node: Node, message: str, status: int | None = None) -> None:
        super().__init__(f"node {node.id}: {message}")
        self.node = node
        self.status = status


class NodeUnavailable(NodeError):
    """The request never reached the node."""


class NodeFailed(NodeError):
    """The node answered with an error or the exchange broke part-way."""


@dataclass(frozen=True)
class ObjectAddress:
    partition: int
    obj_hash: str
    bucket: str
    key: str


@dataclass(frozen=True)
class PutAck:
    node_id: str
    etag: str
    size: int
    superseded: bool = False

    def holds(self, etag: str, size: int) -> bool:
        """Whether the node took the bytes that were sent (or has a newer version already)."""
        return self.superseded or (self.etag, self.size) == (etag, size)


@dataclass(frozen=True)
class NodeStatus:
    node_id: str
    disk_free_bytes: int
    disk_total_bytes: int


class ReadStream:
    """An open GET on one node: status and headers now, the body as it arrives."""

    def __init__(self, node: Node, response: NodeResponse) -> None:
        self.node = node
        self._response = response

    @property
    def status(self) -> int:
        return self._response.status

    @property
    def headers(self) -> CIMultiDictProxy[str]:
        return self._response.headers

    async def chunks(self, size: int) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.chunks(size):
                yield chunk
        except (TimeoutError, OSError, Broken) as exc:
            raise NodeFailed(self.node, f"read broke: {exc!r}") from exc

    def close(self) -> None:
        self._response.release()


class NodeClient:
    def __init__(
        self,
        connections: NodeConnections,
        secret: bytes,
        *,
        connect_timeout: float,
        io_timeout: float,
    ) -> None:
        self._connections = connections
        self._secret = secret
        self._io_timeout = io_timeout
        self._short = connect_timeout + io_timeout

    def _signed(
        self, method: str, path: str, extra: Mapping[str, str] | None = None
    ) -> dict[str, str]:
        # The request id goes to the node so both sides' logs name the same client request.
        return {
            **sign_request(self._secret, method, path),
            **request_id.outgoing_headers(),
            **(extra or {}),
        }

    async def _request(
        self,
        node: Node,
        method: str,
        path: str,
        headers: Mapping[str, str],
        body: bytes | AsyncIterable[bytes] = b"",
        *,
        waits: bool = True,
    ) -> NodeResponse:
        """With `waits` false, the node may be silent for as long as it takes (the caller
        bounds the whole exchange); else `node_io_timeout` at a time."""
        try:
            return await self._connections.request(
                node.url,
                method,
                path,
                self._signed(method, path, headers),
                body,
                stall=self._io_timeout if waits else None,
            )
        except Unreachable as exc:
            raise NodeUnavailable(node, str(exc)) from exc
        except (TimeoutError, OSError, Broken, ValueError) as exc:
            raise NodeFailed(node, f"{method} broke: {exc!r}") from exc

    async def _exchange(
        self,
        node: Node,
        method: str,
        path: str,
        headers: Mapping[str, str] | None = None,
        body: bytes | AsyncIterable[bytes] = b"",
        *,
        within: float | None = None,
        waits: bool = True,
    ) -> tuple[int, Any]:
        """One whole request, done within `within` seconds if given: the status and the
        answer's JSON (None for an empty body)."""
        status = None
        try:
            async with asyncio.timeout(within):
                response = await self._request(node, method, path, headers or {}, body, waits=waits)
                status = response.status
                try:
                    raw = await response.read()
                finally:
                    response.release()
            return status, json.loads(raw) if raw.strip() else None
        except (TimeoutError, OSError, Broken) as exc:
            raise NodeFailed(node, f"{method} {path} broke ({status}): {exc!r}", status) from exc
        except ValueError as exc:
            raise NodeFailed(node, f"unreadable answer ({status}): {exc!r}", status) from exc

    @staticmethod
    def _identity(addr: ObjectAddress, version: str) -> dict[str, str]:
        return {
            BUCKET_HEADER: addr.bucket,
            KEY_HEADER: encode_key(addr.key),
            VERSION_HEADER: version,
        }

    async def put(
        self,
        node: Node,
        addr: ObjectAddress,
        version: str,
        body: AsyncIterable[bytes],
        *,
        size: int | None,
        content_type: str,
        user_meta: Mapping[str, str],
        create_only: bool = False,
    ) -> PutAck:
        # The body ends with the gateway's vouch for its md5 (shardgate.vouch_trailer).
        length = vouched_length(size)
        headers = put_headers(addr.bucket, addr.key, version, content_type, user_meta, length)
        headers[TRAILER_HEADER] = TRAILER_KIND
        if create_only:
            headers["If-None-Match"] = "*"
        path = object_path(addr.partition, addr.obj_hash)
        status, payload = await self._exchange(node, "PUT", path, headers, body)
        if status == 409:
            return PutAck(node.id, etag="", size=0, superseded=True)
        if status != 201:
            raise NodeFailed(node, f"PUT answered {status}: {payload}", status)
        return PutAck(node.id, etag=payload["etag"], size=payload["size"])

    async def open_read(
        self, node: Node, addr: ObjectAddress, *, min_version: str, headers: Mapping[str, str]
    ) -> ReadStream:
        path = object_path(addr.partition, addr.obj_hash)
        response = await self._request(
            node, "GET", path, {MIN_VERSION_HEADER: min_version, **headers}
        )
        return ReadStream(node, response)

    async def delete(self, node: Node, addr: ObjectAddress, version: str) -> bool:
        """Write a tombstone; False when the node already holds something newer."""
        path = object_path(addr.partition, addr.obj_hash)
        status, payload = await self._exchange(
            node, "DELETE", path, self._identity(addr, version), within=self._short
        )
        if status not in (200, 409):
            raise NodeFailed(node, f"DELETE answered {status}: {payload}", status)
        return status == 200

    async def discard(self, node: Node, addr: ObjectAddress, version: str) -> bool:
        path = version_path(addr.partition, addr.obj_hash, version)
        status, payload = await self._exchange(node, "DELETE", path, within=self._short)
        if status != 200:
            raise NodeFailed(node, f"discard answered {status}: {payload}", status)
        return bool(payload["discarded"])

    def _whole_upload(self, size: int) -> float:
        """How long a node may take over a whole upload of `size` bytes (a copy to a peer, a
        hash) before it says a word: the connect and io timeouts, plus `size` / SLOWEST_RATE."""
        return self._short + size / SLOWEST_RATE

    async def pending(
        self, node: Node, upload_id: str, *, sha256: bool = False, size: int = 0
    ) -> dict[str, Any] | None:
        """What the node received for a direct upload, or None if it holds nothing for it;
        with `sha256`, hashed on the node if the upload's token bound none, which reading its
        `size` bytes may take longer than `node_io_timeout`."""
        if sha256:
            path, within = pending_path(upload_id) + "?sha256=1", self._whole_upload(size)
        else:
            path, within = pending_path(upload_id), self._short
        status, payload = await self._exchange(node, "GET", path, within=within, waits=not sha256)
        if status == 404:
            return None
        if status != 200:
            raise NodeFailed(node, f"pending answered {status}: {payload}", status)
        return dict(payload)

    async def copy_pending(
        self, node: Node, upload_id: str, version: str, peer: Node, *, size: int
    ) -> PutAck:
        """Have `node` push its pending upload of `size` bytes to `peer` as `version` (no bytes
        through here); the node answers once the peer has them all."""
        path = pending_path(upload_id, "copy")
        body = {"version": version, "peer_url": peer.url}
        status, payload = await self._exchange(
            node, "POST", path, *_json(body), within=self._whole_upload(size), waits=False
        )
        if status != 200:
            raise NodeFailed(node, f"copy answered {status}: {payload}", status)
        if payload["status"] == 409:
            return PutAck(peer.id, etag="", size=0, superseded=True)
        if payload["status"] != 201:
            raise NodeFailed(
                peer, f"copy from {node.id} answered {payload['status']}: {payload['answer']}"
            )
        return PutAck(peer.id, etag=payload["answer"]["etag"], size=payload["answer"]["size"])

    async def publish_pending(
        self, node: Node, upload_id: str, version: str, source: Mapping[str, Any] | None = None
    ) -> PutAck:
        """Publish a pending upload as `version`; an early copy of one with `source`, what the
        node the client uploaded to received (its size, etag and block digest)."""
        path = pending_path(upload_id, "publish")
        body: dict[str, Any] = {"version": version}
        if source is not None:
            body.update({k: source[k] for k in ("size", "etag", "blocks_digest")})
        status, payload = await self._exchange(node, "POST", path, *_json(body), within=self._short)
        if status == 409:
            return PutAck(node.id, etag="", size=0, superseded=True)
        if status != 201:
            raise NodeFailed(node, f"publish answered {status}: {payload}", status)
        return PutAck(node.id, etag=payload["etag"], size=payload["size"])

    async def held_size(self, node: Node, addr: ObjectAddress, version: str) -> int | None:
        """The size of what `node` would push for `version`: its newest version's, 0 for a
        tombstone; None if it holds nothing that new."""
        path = object_path(addr.partition, addr.obj_hash)
        try:
            async with asyncio.timeout(self._short):
                response = await self._request(node, "HEAD", path, {MIN_VERSION_HEADER: version})
                response.release()
        except TimeoutError as exc:
            raise NodeFailed(node, f"HEAD {path} broke: {exc!r}") from exc
        if response.status == 200:
            return int(response.headers.get("Content-Length", "0"))
        if response.status == 404:
            # A node answers "deleted" whatever its tombstone's age: only one as new counts.
            return 0 if response.headers.get(TOMBSTONE_HEADER, "") >= version else None
        raise NodeFailed(node, f"HEAD answered {response.status}", response.status)

    async def push(
        self, node: Node, addr: ObjectAddress, version: str, peer: Node, *, size: int
    ) -> int:
        """Have `node` send its newest version (at least `version`, of `size` bytes) or
        tombstone to `peer` (no bytes through here); the peer's status."""
        path = object_path(addr.partition, addr.obj_hash) + "/push"
        body = {"peer_url": peer.url, "version": version}
        answer = await self.call(node, "POST", path, body, within=self._whole_upload(size))
        return int(answer["status"])

    async def drop_pending(self, node: Node, upload_id: str) -> None:
        path = pending_path(upload_id)
        status, _ = await self._exchange(node, "DELETE", path, within=self._short)
        if status not in (200, 404):
            raise NodeFailed(node, f"drop answered {status}", status)

    async def status(self, node: Node) -> NodeStatus:
        status, payload = await self._exchange(node, "GET", "/healthz", within=self._short)
        if status != 200:
            raise NodeFailed(node, f"healthz answered {status}", status)
        return NodeStatus(node.id, payload["disk_free_bytes"], payload["disk_total_bytes"])

    async def call(
        self, node: Node, method: str, path: str, body: Any = None, *, within: float
    ) -> Any:
        """A signed JSON exchange that must answer 200 within `within` seconds; its answer."""
        # Only `within` bounds it: a sweep walks a whole disk, a push sends a whole object,
        # before the node says a word.
        headers, data = _json(body) if body is not None else ({}, b"")
        status, payload = await self._exchange(
            node, method, path, headers, data, within=within, waits=False
        )
        if status != 200:
            raise NodeFailed(node, f"{method} {path} answered {status}: {payload}", status)
        return payload


def _json(body: Any) -> tuple[dict[str, str], bytes]:
    """Headers and bytes of a JSON request body."""
    return {"Content-Type": "application/json"}, json.dumps(body).encode()
