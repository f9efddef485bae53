"""Push resource (signed): send this node's newest version or tombstone of one object to a
peer, so the gateway can repair a replica that missed a write without carrying any bytes."""

from __future__ import annotations

import aiohttp
from aiohttp import web

from shardgate.versions import is_version
from storage_node.errors import BadRequest, NotFound, PeerUnreachable
from storage_node.keys import PEERS, STORE
from storage_node.store import LocalFiles


async def push_object(request: web.Request) -> web.Response:
    partition = int(request.match_info["partition"])
    obj_hash = request.match_info["hash"]
    body = await request.json()
    if not isinstance(body, dict) or not is_version(str(body.get("version", ""))):
        raise BadRequest('send {"peer_url": URL, "version": <20-digit version>}')
    peer_url = str(body.get("peer_url", ""))
    if not peer_url.startswith(("http://", "https://")):
        raise BadRequest("peer_url must be an http(s) URL")
    store, peers = request.app[STORE], request.app[PEERS]
    meta = await store.newest(partition, obj_hash)
    if meta is None or meta.version < body["version"]:
        raise NotFound("this node holds nothing as new as that version")
    try:
        if meta.tombstone:
            status, answer = await peers.push_tombstone(peer_url, partition, obj_hash, meta)
        elif isinstance(store, LocalFiles):
            path = store.data_path(partition, obj_hash, meta.version)
            status, answer = await peers.push(peer_url, partition, obj_hash, meta, path)
        else:
            raise BadRequest("this node's store keeps no files to push")
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise PeerUnreachable(f"the push to {peer_url} failed: {exc!r}") from None
    return web.json_response({"version": meta.version, "status": status, "answer": answer})
