"""create_app(config) is the only way to build a gateway; each resource it holds (catalog,
node client session, health probe) is opened and closed by its own cleanup context."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web
from prometheus_client import CollectorRegistry

from gateway.access import ApiKeys
from gateway.admission import admission_middleware
from gateway.auth import auth_middleware
from gateway.bulkhead import Bulkhead
from gateway.cors import cors_middleware
from gateway.direct_uploads import DirectUploads
from gateway.errors import GatewayError
from gateway.keys import (
    API_KEYS,
    BULKHEAD,
    CATALOG,
    CONFIG,
    DIRECT,
    HEALTH,
    METRICS,
    MULTIPART,
    OBJECTS,
    SWEEPS,
)
from gateway.metrics import GatewayMetrics, refresh_catalog_gauges
from gateway.multipart import MultipartUploads, PartRules
from gateway.node_health import NodeHealth
from gateway.nodes import NodeClient
from gateway.object_service import ObjectService
from gateway.repairs import RepairDrain
from gateway.replicated_read import ReplicatedReader
from gateway.replicated_write import ReplicatedWriter
from gateway.routes import ROUTES
from gateway.sqlite_catalog import SqliteCatalog
from gateway.sweep import SweepCoordinator
from ring import Ring, load_ring_file
from shardgate.config import ConfigError, GatewayConfig
from shardgate.periodic import every
from shardgate.web import REGISTRY_KEY, base_middlewares, stamp_responses

log = logging.getLogger(__name__)
RING = web.AppKey("ring", Ring)
_PROBE = web.AppKey("probe", asyncio.Task[None])
_DRAIN = web.AppKey("drain", RepairDrain)


def create_app(config: GatewayConfig) -> web.Application:
    ring = Ring(load_ring_file(config.ring_file))
    if config.write_quorum > ring.replicas:
        raise ConfigError(
            f"write_quorum {config.write_quorum} exceeds the ring's {ring.replicas} replicas"
        )
    registry = CollectorRegistry()
    app = web.Application(
        middlewares=[
            *base_middlewares(registry),
            cors_middleware(),
            auth_middleware(),
            admission_middleware(),
        ],
        client_max_size=1024**2,
    )
    app[CONFIG] = config
    app[RING] = ring
    app[REGISTRY_KEY] = registry
    app[METRICS] = GatewayMetrics.create(registry, [node.id for node in ring.nodes])
    app[BULKHEAD] = Bulkhead(
        {
            "upload": config.upload_limit,
            "download": config.download_limit,
            "other": config.other_limit,
        },
        {
            "upload": config.key_upload_limit,
            "download": config.key_download_limit,
            "other": config.key_other_limit,
        },
    )
    stamp_responses(app)
    app.cleanup_ctx.append(_catalog)
    app.cleanup_ctx.append(_services)
    app.cleanup_ctx.append(_health_probe)
    app.cleanup_ctx.append(every(lambda a: a[CONFIG].upload_expiry_interval, _expire_uploads))
    app.cleanup_ctx.append(every(lambda a: a[CONFIG].sweep_interval, _sweep_orphans))
    app.cleanup_ctx.append(every(lambda a: a[CONFIG].repair_interval, _drain_repairs))
    app.cleanup_ctx.append(
        every(lambda a: a[CONFIG].metrics_interval, _refresh_catalog_gauges, immediately=True)
    )
    app.add_routes(ROUTES)
    return app


async def _catalog(app: web.Application) -> AsyncIterator[None]:
    catalog = SqliteCatalog(app[CONFIG].catalog_path)
    await catalog.open()
    app[CATALOG] = catalog
    config = app[CONFIG]
    app[API_KEYS] = ApiKeys(
        catalog, config.admin_key_sha256, cache_seconds=config.api_key_cache_seconds
    )
    yield
    await catalog.close()


async def _services(app: web.Application) -> AsyncIterator[None]:
    config, metrics = app[CONFIG], app[METRICS]
    connector = aiohttp.TCPConnector(limit=1024, limit_per_host=0)
    async with aiohttp.ClientSession(connector=connector, auto_decompress=False) as session:
        client = NodeClient(
            session,
            config.cluster_secret,
            connect_timeout=config.node_connect_timeout,
            io_timeout=config.node_io_timeout,
        )
        health = NodeHealth(
            client, interval=config.health_interval, down_backoff=config.node_down_backoff
        )
        app[HEALTH] = health
        writer = ReplicatedWriter(client, health, metrics, stall_timeout=config.node_io_timeout)
        app[OBJECTS] = ObjectService(
            ring=app[RING],
            catalog=app[CATALOG],
            client=client,
            health=health,
            writer=writer,
            reader=ReplicatedReader(client, health, metrics),
            metrics=metrics,
            write_quorum=config.write_quorum,
            max_object_size=config.max_object_size,
            io_timeout=config.node_io_timeout,
            staging_lifetime=config.upload_lifetime,
        )
        app[DIRECT] = DirectUploads(
            config=config,
            objects=app[OBJECTS],
            catalog=app[CATALOG],
            client=client,
            health=health,
            writer=writer,
        )
        app[MULTIPART] = MultipartUploads(
            objects=app[OBJECTS],
            catalog=app[CATALOG],
            writer=writer,
            rules=PartRules(min_part_size=config.min_part_size, lifetime=config.upload_lifetime),
            write_quorum=config.write_quorum,
            metrics=metrics,
            direct=app[DIRECT],
        )
        app[SWEEPS] = SweepCoordinator(client, app[CATALOG])
        app[_DRAIN] = RepairDrain(app[RING], app[CATALOG], client, health)
        yield


async def _refresh_catalog_gauges(app: web.Application) -> None:
    await refresh_catalog_gauges(app[METRICS], app[CATALOG])


async def _health_probe(app: web.Application) -> AsyncIterator[None]:
    health, metrics, ring = app[HEALTH], app[METRICS], app[RING]

    async def probe_forever() -> None:
        while True:
            await asyncio.gather(*(health.probe(node) for node in ring.nodes))
            for node in ring.nodes:
                metrics.node_up.labels(node.id).set(1 if health.is_up(node.id) else 0)
            await asyncio.sleep(app[CONFIG].health_interval)

    app[_PROBE] = asyncio.create_task(probe_forever())
    yield
    app[_PROBE].cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await app[_PROBE]


async def _expire_uploads(app: web.Application) -> None:
    """Abort multipart uploads past their expiry."""
    try:
        await app[MULTIPART].expire(time.time())
    except GatewayError as exc:
        log.warning("expiring multipart uploads failed; will retry: %s", exc)


async def _sweep_orphans(app: web.Application) -> None:
    """Have the nodes that are up discard the replicas the catalog no longer wants (nodes
    sweep their own temp files and pending uploads on their own)."""
    health = app[HEALTH]
    nodes = [node for node in app[RING].nodes if health.is_up(node.id)]
    for sweep in await app[SWEEPS].sweep(nodes, dry_run=False, local=False):
        if sweep.report.total_files:
            log.info(
                "orphan sweep of node %s reclaimed %d files, %d bytes",
                sweep.node.id,
                sweep.report.total_files,
                sweep.report.total_bytes,
            )


async def _drain_repairs(app: web.Application) -> None:
    """Push missed writes to the replicas that missed them."""
    try:
        repaired = await app[_DRAIN].drain_once()
    except GatewayError as exc:
        log.warning("draining repairs failed; will retry: %s", exc)
        return
    if repaired:
        log.info("repaired %d replicas that had missed a write", repaired)
