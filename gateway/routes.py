"""The gateway's routes, as one table."""

from __future__ import annotations

from aiohttp import web

from gateway import cors
from gateway.api import (
    api_keys,
    buckets,
    cluster,
    direct,
    forms,
    health,
    listing,
    mirror,
    objects,
    openapi,
    sweep,
    uploads,
)
from shardgate.web import metrics_handler

_BUCKET_OBJECTS = "/v1/objects/{bucket}"
_OBJECT = "/v1/objects/{bucket}/{key:.+}"
_PART = "/v1/uploads/{upload_id}/parts/{part_number:[1-9][0-9]{0,4}}"

ROUTES = [
    web.get("/v1/buckets", buckets.list_buckets),
    web.put("/v1/buckets/{bucket}", buckets.put_bucket),
    web.get("/v1/buckets/{bucket}", buckets.get_bucket),
    web.delete("/v1/buckets/{bucket}", buckets.delete_bucket),
    web.get(_BUCKET_OBJECTS, listing.list_objects),
    web.post(_BUCKET_OBJECTS, forms.post_objects),
    web.options(_BUCKET_OBJECTS, cors.preflight),
    web.post(_OBJECT + "/commit", direct.commit),
    web.put(_OBJECT, objects.put_object),
    web.get(_OBJECT, objects.get_object),  # aiohttp adds HEAD for GET routes
    web.delete(_OBJECT, objects.delete_object),
    web.options(_OBJECT, cors.preflight),
    web.post("/v1/presign", direct.presign),
    web.post("/v1/uploads", uploads.initiate),
    web.get("/v1/uploads", uploads.list_uploads),
    web.get("/v1/uploads/{upload_id}", uploads.progress),
    web.delete("/v1/uploads/{upload_id}", uploads.abort),
    web.put(_PART, uploads.put_part),
    web.post(_PART + "/presign", uploads.presign_part),
    web.post("/v1/uploads/{upload_id}/complete", uploads.complete),
    web.post("/v1/keys", api_keys.create_key),
    web.get("/v1/keys", api_keys.list_keys),
    web.delete("/v1/keys/{id}", api_keys.revoke_key),
    web.get("/v1/cluster", cluster.get_cluster),
    web.post("/v1/sweep", sweep.run_sweep),
    web.get("/v1/mirror", mirror.get_mirror),
    web.post("/v1/mirror/retry", mirror.retry_failed),
    web.get("/v1/openapi.yaml", openapi.openapi),
    web.get("/healthz", health.healthz),
    web.get("/readyz", health.readyz),
    web.get("/metrics", metrics_handler),
]
