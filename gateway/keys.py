"""App and request keys: the typed slots through which handlers reach services and the caller."""

from __future__ import annotations

from aiohttp import web

from gateway.access import ApiKeys, Principal
from gateway.bulkhead import Bulkhead
from gateway.catalog import Catalog
from gateway.direct_uploads import DirectUploads
from gateway.metrics import GatewayMetrics
from gateway.mirror_outbox import MirrorOutbox
from gateway.multipart import MultipartUploads
from gateway.node_health import NodeHealth
from gateway.object_service import ObjectService
from gateway.sweep import SweepCoordinator
from shardgate.config import GatewayConfig

CONFIG = web.AppKey("config", GatewayConfig)
CATALOG = web.AppKey("catalog", Catalog)
HEALTH = web.AppKey("health", NodeHealth)
OBJECTS = web.AppKey("objects", ObjectService)
METRICS = web.AppKey("metrics", GatewayMetrics)
API_KEYS = web.AppKey("api_keys", ApiKeys)
BULKHEAD = web.AppKey("bulkhead", Bulkhead)
DIRECT = web.AppKey("direct", DirectUploads)
MULTIPART = web.AppKey("multipart", MultipartUploads)
SWEEPS = web.AppKey("sweeps", SweepCoordinator)
MIRROR_OUTBOX = web.AppKey("mirror_outbox", MirrorOutbox)
PRINCIPAL = web.RequestKey("principal", Principal)
