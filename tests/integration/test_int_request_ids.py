"""Issue 10: a request id is accepted from the client (or generated), returned on every answer,
errors included, passed from the gateway to each node it calls, and named in both sides' JSON
access-log lines. Real processes logging JSON lines to a file."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import aiohttp
from clusterkit import Api, start_logged_cluster

BUCKET = "traced"
GENERATED = re.compile(r"[0-9a-f]{32}")


async def _put(api: Api, key: str, body: bytes, rid: str | None) -> tuple[int, str]:
    headers = {**api.auth, **({"X-Request-Id": rid} if rid is not None else {})}
    async with api.session.put(api.object_url(BUCKET, key), data=body, headers=headers) as resp:
        await resp.read()
        return resp.status, resp.headers["X-Request-Id"]


async def test_request_id_flows_from_client_to_nodes_and_back(
    tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    log = tmp_path / "services.log"
    env = {"SHARDGATE_GATEWAY_LOG_JSON": "true", "SHARDGATE_NODE_LOG_JSON": "true"}
    cluster = start_logged_cluster(tmp_path / "cluster", log, env)
    try:
        api = Api(session, cluster.url, cluster.api_key)
        await api.create_bucket(BUCKET)
        body = b"traced body" * 100
        assert await _put(api, "a/b.txt", body, "client-id-0001") == (201, "client-id-0001")
        # errors carry it too: an unknown object, and a refusal before any handler runs
        headers = {**api.auth, "X-Request-Id": "client-id-0404"}
        async with session.get(api.object_url(BUCKET, "nope"), headers=headers) as resp:
            assert (resp.status, resp.headers["X-Request-Id"]) == (404, "client-id-0404")
        async with session.get(f"{api.url}/v1/buckets", headers={"X-Request-Id": "id-401"}) as resp:
            assert (resp.status, resp.headers["X-Request-Id"]) == (401, "id-401")
        # an id that is too long or holds spaces is replaced, not refused
        status, replaced = await _put(api, "a/c.txt", body, "x" * 129)
        assert status == 201 and GENERATED.fullmatch(replaced)
        status, replaced = await _put(api, "a/d.txt", body, "has space")
        assert status == 201 and GENERATED.fullmatch(replaced)
        status, generated = await _put(api, "a/e.txt", body, None)
        assert status == 201 and GENERATED.fullmatch(generated)
    finally:
        cluster.stop()

    lines = _json_lines(log)
    client = [entry for entry in lines if entry.get("request_id") == "client-id-0001"]
    access = {(e["service"], e["route"], e["status"]) for e in client if "route" in e}
    assert ("gateway", "/v1/objects/{bucket}/{key}", 201) in access
    for node_id in cluster.node_ids:
        assert (f"node/{node_id}", "/internal/v1/objects/{partition}/{hash}", 201) in access
    gateway_put = next(e for e in client if e["service"] == "gateway" and "route" in e)
    assert gateway_put["method"] == "PUT"
    assert gateway_put["bytes_in"] == len(body)
    assert gateway_put["duration_s"] >= 0 and gateway_put["bytes_out"] > 0
    generated_lines = {e["service"] for e in lines if e.get("request_id") == generated}
    assert generated_lines == {"gateway", *(f"node/{n}" for n in cluster.node_ids)}
    assert not any("a/b.txt" in json.dumps(e) for e in lines if "route" in e)


def _json_lines(log: Path) -> list[dict[str, Any]]:
    """Every log line; a service logging JSON writes nothing else to stderr."""
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
