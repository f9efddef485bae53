"""Node-to-node transfers: one node streams a file it holds to a peer as a signed internal PUT,
so that a commit replicates without the gateway carrying the bytes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp

from shardgate import request_id
from shardgate.internal_api import object_path, put_headers
from shardgate.signing import sign_request
from storage_node.records import ObjectMeta


class PeerClient:
    def __init__(self, session: aiohttp.ClientSession, secret: bytes, chunk_size: int) -> None:
        self._session = session
        self._secret = secret
        self._chunk = chunk_size

    async def _file_chunks(self, path: Path) -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        fh = await loop.run_in_executor(None, path.open, "rb")
        try:
            while chunk := await loop.run_in_executor(None, fh.read, self._chunk):
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
        headers.update(sign_request(self._secret, "PUT", target))
        headers.update(request_id.outgoing_headers())
        async with self._session.put(
            peer_url + target, data=self._file_chunks(path), headers=headers
        ) as resp:
            return resp.status, await resp.json(content_type=None)
