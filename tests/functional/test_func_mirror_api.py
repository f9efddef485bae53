"""The gateway's side of the S3 mirror, in-process and without a target: jobs queue in the outbox
as objects change, objects show `pending`, and the admin routes report and validate."""

from __future__ import annotations

from func_cluster import InProcCluster


async def test_changes_to_a_mirrored_bucket_queue_jobs_and_show_pending(
    inproc_cluster: InProcCluster,
) -> None:
    c = inproc_cluster
    resp = await c.client.put("/v1/buckets/mirrored", json={"mirror": True}, headers=c.auth)
    assert resp.status == 201
    await c.create_bucket("plain")
    resp = await c.client.put("/v1/objects/mirrored/a.txt", data=b"abc", headers=c.auth)
    assert (await resp.json())["mirror"] == {"state": "pending", "url": None}
    resp = await c.client.put("/v1/objects/plain/a.txt", data=b"abc", headers=c.auth)
    assert (await resp.json())["mirror"] == {"state": "off", "url": None}
    resp = await c.client.head("/v1/objects/mirrored/a.txt", headers=c.auth)
    assert resp.headers["X-Shardgate-Mirror-State"] == "pending"
    assert "X-Shardgate-Mirror-Url" not in resp.headers
    resp = await c.client.get("/v1/objects/mirrored", headers=c.auth)
    assert [o["mirror"]["state"] for o in (await resp.json())["objects"]] == ["pending"]
    resp = await c.client.delete("/v1/objects/mirrored/a.txt", headers=c.auth)
    assert resp.status == 204

    status = await (await c.client.get("/v1/mirror", headers=c.auth)).json()
    assert status["depth"] == {"queued": 2, "failed": 0}  # the put and the delete
    assert status["workers"] == 0 and status["target"]["bucket"] is None
    assert status["lag_seconds"] >= 0 and status["recent_failures"] == []
    cluster = await (await c.client.get("/v1/cluster", headers=c.auth)).json()
    assert cluster["mirror"]["queued"] == 2
    resp = await c.client.post("/v1/mirror/retry", json={"all": True}, headers=c.auth)
    assert await resp.json() == {"requeued": 0}


async def test_mirror_routes_are_for_admins_and_check_their_body(
    inproc_cluster: InProcCluster,
) -> None:
    c = inproc_cluster
    bad = (
        {},
        {"all": False},
        {"job": "7"},
        {"job": True},
        {"job": 2**64},
        {"job": 1, "all": True},
        [1],
    )
    for body in bad:
        resp = await c.client.post("/v1/mirror/retry", json=body, headers=c.auth)
        assert resp.status == 400, body
        assert (await resp.json())["error"]["code"] == "InvalidArgument"
    resp = await c.client.post(
        "/v1/keys", json={"name": "reader", "rights": ["read"]}, headers=c.auth
    )
    reader = {"Authorization": f"Bearer {(await resp.json())['key']}"}
    assert (await c.client.get("/v1/mirror", headers=reader)).status == 403
    resp = await c.client.post("/v1/mirror/retry", json={"all": True}, headers=reader)
    assert resp.status == 403
