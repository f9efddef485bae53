"""A signed HTTP client for the storage nodes' internal API, returning typed results.

Errors come in two kinds: NodeUnavailable (nothing reached the node: connect failed or it
reset at once) and NodeFailed (the node answered, or broke, mid-request).
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
from multidict import CIMultiDictProxy

from ring import Node
from shardgate import request_id
from shardgate.internal_api import (
    BUCKET_HEADER,
    KEY_HEADER,
    MIN_VERSION_HEADER,
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

    def __init__(self, node: Node, response: aiohttp.ClientResponse) -> None:
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
            async for chunk in self._response.content.iter_chunked(size):
                yield chunk
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise NodeFailed(self.node, f"read broke: {exc!r}") from exc

    def close(self) -> None:
        self._response.release()


class NodeClient:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        secret: bytes,
        *,
        connect_timeout: float,
        io_timeout: float,
    ) -> None:
        self._session = session
        self._secret = secret
        self._timeout = aiohttp.ClientTimeout(
            total=None, connect=connect_timeout, sock_connect=connect_timeout, sock_read=io_timeout
        )
        self._short = aiohttp.ClientTimeout(
            total=connect_timeout + io_timeout, connect=connect_timeout
        )

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
        self, node: Node, method: str, path: str, headers: dict[str, str], **kwargs: Any
    ) -> aiohttp.ClientResponse:
        try:
            return await self._session.request(
                method, node.url + path, headers=self._signed(method, path, headers), **kwargs
            )
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
            raise NodeUnavailable(node, f"cannot connect: {exc!r}") from exc
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise NodeFailed(node, f"{method} broke: {exc!r}") from exc

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
        response = await self._request(node, "PUT", path, headers, data=body, timeout=self._timeout)
        async with response:
            payload = await self._json(node, response)
        if response.status == 409:
            return PutAck(node.id, etag="", size=0, superseded=True)
        if response.status != 201:
            raise NodeFailed(node, f"PUT answered {response.status}: {payload}", response.status)
        return PutAck(node.id, etag=payload["etag"], size=payload["size"])

    async def open_read(
        self, node: Node, addr: ObjectAddress, *, min_version: str, headers: Mapping[str, str]
    ) -> ReadStream:
        path = object_path(addr.partition, addr.obj_hash)
        response = await self._request(
            node, "GET", path, {MIN_VERSION_HEADER: min_version, **headers}, timeout=self._timeout
        )
        return ReadStream(node, response)

    async def delete(self, node: Node, addr: ObjectAddress, version: str) -> bool:
        """Write a tombstone; False when the node already holds something newer."""
        path = object_path(addr.partition, addr.obj_hash)
        response = await self._request(
            node, "DELETE", path, self._identity(addr, version), timeout=self._short
        )
        async with response:
            payload = await self._json(node, response)
        if response.status not in (200, 409):
            raise NodeFailed(node, f"DELETE answered {response.status}: {payload}", response.status)
        return response.status == 200

    async def discard(self, node: Node, addr: ObjectAddress, version: str) -> bool:
        path = version_path(addr.partition, addr.obj_hash, version)
        response = await self._request(node, "DELETE", path, {}, timeout=self._short)
        async with response:
            payload = await self._json(node, response)
        if response.status != 200:
            raise NodeFailed(
                node, f"discard answered {response.status}: {payload}", response.status
            )
        return bool(payload["discarded"])

    async def pending(
        self, node: Node, upload_id: str, *, sha256: bool = False
    ) -> dict[str, Any] | None:
        """What the node received for a direct upload, or None if it holds nothing for it;
        with `sha256`, hashed on the node if the upload's token bound no sha256."""
        path, timeout = pending_path(upload_id), self._short
        if sha256:
            path, timeout = path + "?sha256=1", self._timeout  # the node reads the whole upload
        response = await self._request(node, "GET", path, {}, timeout=timeout)
        async with response:
            payload = await self._json(node, response)
        if response.status == 404:
            return None
        if response.status != 200:
            raise NodeFailed(
                node, f"pending answered {response.status}: {payload}", response.status
            )
        return dict(payload)

    async def copy_pending(self, node: Node, upload_id: str, version: str, peer: Node) -> PutAck:
        """Have `node` push its pending upload to `peer` as `version` (no bytes through here)."""
        path = pending_path(upload_id, "copy")
        body = {"version": version, "peer_url": peer.url}
        response = await self._request(node, "POST", path, {}, json=body, timeout=self._timeout)
        async with response:
            payload = await self._json(node, response)
        if response.status != 200:
            raise NodeFailed(node, f"copy answered {response.status}: {payload}", response.status)
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
        response = await self._request(node, "POST", path, {}, json=body, timeout=self._short)
        async with response:
            payload = await self._json(node, response)
        if response.status == 409:
            return PutAck(node.id, etag="", size=0, superseded=True)
        if response.status != 201:
            raise NodeFailed(
                node, f"publish answered {response.status}: {payload}", response.status
            )
        return PutAck(node.id, etag=payload["etag"], size=payload["size"])

    async def drop_pending(self, node: Node, upload_id: str) -> None:
        response = await self._request(
            node, "DELETE", pending_path(upload_id), {}, timeout=self._short
        )
        async with response:
            await self._json(node, response)
        if response.status not in (200, 404):
            raise NodeFailed(node, f"drop answered {response.status}", response.status)

    async def status(self, node: Node) -> NodeStatus:
        response = await self._request(node, "GET", "/healthz", {}, timeout=self._short)
        async with response:
            payload = await self._json(node, response)
        if response.status != 200:
            raise NodeFailed(node, f"healthz answered {response.status}", response.status)
        return NodeStatus(node.id, payload["disk_free_bytes"], payload["disk_total_bytes"])

    async def call(
        self, node: Node, method: str, path: str, body: Any = None, *, within: float
    ) -> Any:
        """A signed JSON exchange that must answer 200 within `within` seconds; its answer."""
        response = await self._request(
            node, method, path, {}, json=body, timeout=aiohttp.ClientTimeout(total=within)
        )
        async with response:
            payload = await self._json(node, response)
        if response.status != 200:
            raise NodeFailed(
                node, f"{method} {path} answered {response.status}: {payload}", response.status
            )
        return payload

    @staticmethod
    async def _json(node: Node, response: aiohttp.ClientResponse) -> Any:
        try:
            return await response.json(content_type=None)
        except (TimeoutError, ValueError, aiohttp.ClientError) as exc:
            raise NodeFailed(
                node, f"unreadable answer ({response.status}): {exc!r}", response.status
            ) from exc
