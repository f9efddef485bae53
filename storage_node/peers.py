"""Node-to-node calls, signed with the cluster secret: a node streams a version it holds to a
peer as an internal PUT (so commits and repairs replicate without the gateway carrying bytes),
sends a tombstone as an internal DELETE, and reads a peer's partition listings and digests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import hdrs

from shardgate import request_id
from shardgate.internal_api import (
    BUCKET_HEADER,
    COMMIT_BY_HEADER,
    KEY_HEADER,
    PARTITION_HEADER,
    PREFIX,
    SOURCE_HEADER,
    VERSION_HEADER,
    VOUCHED_BLOCKS_HEADER,
    VOUCHED_ETAG_HEADER,
    encode_key,
    object_path,
    partition_path,
    pending_path,
    put_headers,
)
from shardgate.signing import sign_request
from storage_node.blocks import vouch
from storage_node.records import ObjectMeta, PendingUpload

# An object's transfer may take as long as its size needs (the session's default caps every
# request at 300 s); a peer that stops answering is cut off after a minute of silence instead.
TRANSFER_TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=60)


class PeerClient:
    def __init__(self, session: aiohttp.ClientSession, secret: bytes, chunk_size: int) -> None:
        self._session = session
        self._secret = secret
        self._chunk = chunk_size

    async def _file_chunks(self, path: Path, size: int) -> AsyncIterator[bytes]:
        """The first `size` bytes of the file: a version's, not the trailer after them."""
        loop = asyncio.get_running_loop()
        fh = await loop.run_in_executor(None, path.open, "rb")
        try:
            while size > 0:
                chunk = await loop.run_in_executor(None, fh.read, min(self._chunk, size))
                if not chunk:
                    break
                size -= len(chunk)
                yield chunk
        finally:
            await loop.run_in_executor(None, fh.close)

    async def push(
        self, peer_url: str, partition: int, obj_hash: str, meta: ObjectMeta, path: Path
    ) -> tuple[int, Any]:
        """Store `meta.version` on the peer from `path`; the peer's status and JSON answer."""
        target = object_path(partition, obj_hash)
        headers = put_headers(
            meta.bucket, meta.key, meta.version, meta.content_type, meta.user_meta, meta.size
        )
        vouched = vouch(meta)
        if vouched is not None:
            headers[VOUCHED_ETAG_HEADER] = vouched.etag
            headers[VOUCHED_BLOCKS_HEADER] = vouched.blocks_digest
        headers.update(sign_request(self._secret, "PUT", target))
        headers.update(request_id.outgoing_headers())
        async with self._session.put(
            peer_url + target,
            data=self._file_chunks(path, meta.size),
            headers=headers,
            timeout=TRANSFER_TIMEOUT,
        ) as resp:
            return resp.status, await resp.json(content_type=None)

    async def copy_upload(
        self,
        peer_url: str,
        upload: PendingUpload,
        source: str,
        chunks: AsyncIterator[bytes],
        length: int | None = None,
    ) -> tuple[int, Any]:
        """Stream a direct upload to a peer while it arrives: the peer keeps an early copy,
        pending like the upload itself; the peer's status and JSON answer. A known `length` is
        sent as Content-Length: chunked encoding would copy every chunk once more to frame it."""
        path = pending_path(upload.upload_id)
        headers = {
            BUCKET_HEADER: upload.bucket,
            KEY_HEADER: encode_key(upload.key),
            PARTITION_HEADER: str(upload.partition),
            COMMIT_BY_HEADER: repr(upload.commit_by),
            SOURCE_HEADER: source,
            "Content-Type": upload.content_type,
            **sign_request(self._secret, "PUT", path),
            **request_id.outgoing_headers(),
        }
        if length is not None:
            headers[hdrs.CONTENT_LENGTH] = str(length)
        async with self._session.put(
            peer_url + path, data=chunks, headers=headers, timeout=TRANSFER_TIMEOUT
        ) as resp:
            return resp.status, await resp.json(content_type=None)

    async def push_tombstone(
        self, peer_url: str, partition: int, obj_hash: str, meta: ObjectMeta
    ) -> tuple[int, Any]:
        target = object_path(partition, obj_hash)
        headers = {
            BUCKET_HEADER: meta.bucket,
            KEY_HEADER: encode_key(meta.key),
            VERSION_HEADER: meta.version,
            **sign_request(self._secret, "DELETE", target),
            **request_id.outgoing_headers(),
        }
        async with self._session.delete(peer_url + target, headers=headers) as resp:
            return resp.status, await resp.json(content_type=None)

    async def listing(self, peer_url: str, partition: int) -> dict[str, tuple[str, bool]]:
        """hash -> (newest version, is it a tombstone) for one partition on the peer."""
        answer = await self._call(peer_url, "GET", partition_path(partition))
        return {o["hash"]: (o["version"], o["tombstone"]) for o in answer["objects"]}

    async def digests(self, peer_url: str, partitions: Sequence[int]) -> dict[int, str]:
        body = {"partitions": list(partitions)}
        answer = await self._call(peer_url, "POST", PREFIX + "/digests", body)
        return {int(p): digest for p, digest in answer["digests"].items()}

    async def ask_push(
        self, peer_url: str, partition: int, obj_hash: str, version: str, to_url: str
    ) -> int:
        """Have the peer push its copy (that version or newer) to `to_url`; the status it got."""
        body = {"peer_url": to_url, "version": version}
        answer = await self._call(
            peer_url, "POST", object_path(partition, obj_hash) + "/push", body
        )
        return int(answer["status"])

    async def _call(self, peer_url: str, method: str, path: str, body: Any = None) -> Any:
        headers = {**sign_request(self._secret, method, path), **request_id.outgoing_headers()}
        async with self._session.request(
            method, peer_url + path, json=body, headers=headers
        ) as resp:
            if resp.status != 200:
                raise aiohttp.ClientResponseError(
                    resp.request_info, resp.history, status=resp.status, message=await resp.text()
                )
            return await resp.json()
