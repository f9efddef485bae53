"""App keys: the typed slots through which handlers reach the gateway's services."""

from __future__ import annotations

from aiohttp import web

from gateway.catalog import Catalog
from gateway.metrics import GatewayMetrics
from gateway.node_health import NodeHealth
from gateway.object_service import ObjectService
from shardgate.config import GatewayConfig

CONFIG = web.AppKey("config", GatewayConfig)
CATALOG = web.AppKey("catalog", Catalog)
HEALTH = web.AppKey("health", NodeHealth)
OBJECTS = web.AppKey("objects", ObjectService)
METRICS = web.AppKey("metrics", GatewayMetrics)
