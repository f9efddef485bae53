"""create_app(config) is the only way to build a gateway; each resource it holds (catalog,
node client session, health probe) is opened and closed by its own cleanup context."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator

from aiohttp import web

from gateway.access import ApiKeys
from gateway.admission import admission_middleware
from gateway.auth import auth_middleware
from gateway.bulkhead import Bulkhead
from gateway.catalog import Catalog
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
    MIRROR_OUTBOX,
    MULTIPART,
    OBJECTS,
    SWEEPS,
)
from gateway.metrics import GatewayMetrics, refresh_catalog_gauges
from gateway.multipart import MultipartUploads, PartRules
from gateway.node_health import NodeHealth
from gateway.node_http import NodeConnections
from gateway.nodes import NodeClient
from gateway.object_service import ObjectService
from gateway.repairs import RepairDrain
from gateway.replicated_read import ReplicatedReader
from gateway.replicated_write import ReplicatedWriter
from gateway.routes import ROUTES
from gateway.sqlite_catalog import SqliteCatalog
from gateway.sweep import SweepCoordinator
from ring import Ring, RingWatch, load_ring_file
from shardgate.config import ConfigError, GatewayConfig
from shardgate.periodic import every
from shardgate.process_metrics import service_registry
from shardgate.web import REGISTRY_KEY, base_middlewares, stamp_responses

log = logging.getLogger(__name__)
_FIRST_RING = web.AppKey("first_ring", Ring)
_RINGS = web.AppKey("rings", RingWatch)
_PROBE = web.AppKey("probe", asyncio.Task[None])
_DRAIN = web.AppKey("drain", RepairDrain)


def create_app(config: GatewayConfig) -> web.Application:
    ring = Ring(load_ring_file(config.ring_file))
    if config.write_quorum > ring.replicas:
        raise ConfigError(
            f"write_quorum {config.write_quorum} exceeds the ring's {ring.replicas} replicas"
        )
    registry = service_registry()
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
    app[_FIRST_RING] = ring  # services then follow the ring file: app[OBJECTS].ring
    app[_RINGS] = RingWatch(config.ring_file)
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
    app.cleanup_ctx.append(_mirror)
    app.cleanup_ctx.append(
        every(lambda a: a[CONFIG].metrics_interval, _refresh_catalog_gauges, immediately=True)
    )
    app.add_routes(ROUTES)
    return app


async def _catalog(app: web.Application) -> AsyncIterator[None]:
    catalog = SqliteCatalog(app[CONFIG].catalog_path)
    await catalog.open()
    app[CATALOG] = catalog
    app[MIRROR_OUTBOX] = catalog
    config = app[CONFIG]
    app[API_KEYS] = ApiKeys(
        catalog, config.admin_key_sha256, cache_seconds=config.api_key_cache_seconds
    )
    yield
    await catalog.close()


async def _services(app: web.Application) -> AsyncIterator[None]:
    config, metrics = app[CONFIG], app[METRICS]
    connections = NodeConnections(
        connect_timeout=config.node_connect_timeout, on_open=metrics.node_connections_opened.inc
    )
    try:
        client, health = node_access(connections, config)
        app[HEALTH] = health
        writer = ReplicatedWriter(
            client,
            health,
            metrics,
            stall_timeout=config.node_io_timeout,
            repairs=app[CATALOG],
            late_limit=config.late_replica_writes,
        )
        app[OBJECTS] = object_service(
            config, app[_FIRST_RING], app[CATALOG], client, health, writer, metrics
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
        app[_DRAIN] = RepairDrain(lambda: app[OBJECTS].ring, app[CATALOG], client, health)
        yield
        # Short: a service manager kills a gateway that takes longer than about 30 s to stop.
        await writer.close(grace=min(config.node_io_timeout, 5.0))
    finally:
        connections.close()


def object_service(
    config: GatewayConfig,
    ring: Ring,
    catalog: Catalog,
    client: NodeClient,
    health: NodeHealth,
    writer: ReplicatedWriter,
    metrics: GatewayMetrics,
) -> ObjectService:
    """Objects as every process serving or reading them sees them."""
    return ObjectService(
        ring=ring,
        catalog=catalog,
        client=client,
        health=health,
        writer=writer,
        reader=ReplicatedReader(client, health, metrics, writing=writer.writing),
        metrics=metrics,
        write_quorum=config.write_quorum,
        max_object_size=config.max_object_size,
        io_timeout=config.node_io_timeout,
        staging_lifetime=config.upload_lifetime,
    )


def node_access(
    connections: NodeConnections, config: GatewayConfig
) -> tuple[NodeClient, NodeHealth]:
    """The signed node client and the view of node health, as every process reading nodes has."""
    client = NodeClient(
        connections,
        config.cluster_secret,
        connect_timeout=config.node_connect_timeout,
        io_timeout=config.node_io_timeout,
    )
    health = NodeHealth(
        client, interval=config.health_interval, down_backoff=config.node_down_backoff
    )
    return client, health


async def _refresh_catalog_gauges(app: web.Application) -> None:
    await refresh_catalog_gauges(app[METRICS], app[CATALOG])


async def _health_probe(app: web.Application) -> AsyncIterator[None]:
    health, metrics = app[HEALTH], app[METRICS]

    async def probe_forever() -> None:
        while True:
            ring = await _follow_ring_file(app)
            await asyncio.gather(*(health.probe(node) for node in ring.nodes))
            for node in ring.nodes:
                metrics.node_up.labels(node.id).set(1 if health.is_up(node.id) else 0)
            await asyncio.sleep(app[CONFIG].health_interval)

    app[_PROBE] = asyncio.create_task(probe_forever())
    yield
    app[_PROBE].cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await app[_PROBE]


async def _follow_ring_file(app: web.Application) -> Ring:
    """The ring in force, switched to the ring file's new epoch when one appears (checked with
    every health probe); a ring that would re-place everything or break the quorum is refused."""
    objects, config = app[OBJECTS], app[CONFIG]
    # Building a ring of thousands of partitions takes a while: off the loop.
    latest = await asyncio.get_running_loop().run_in_executor(None, app[_RINGS].current)
    current = objects.ring
    if latest is None or latest.epoch == current.epoch:
        return current
    if latest.partition_power != current.partition_power or latest.replicas < config.write_quorum:
        log.error(
            "ring epoch %d refused: partition power %d -> %d, replicas %d (write quorum %d)",
            latest.epoch,
            current.partition_power,
            latest.partition_power,
            latest.replicas,
            config.write_quorum,
        )
        return current
    log.info("ring epoch %d in force (was %d)", latest.epoch, current.epoch)
    objects.ring = latest
    return latest


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
    nodes = [node for node in app[OBJECTS].ring.nodes if health.is_up(node.id)]
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


async def _mirror(app: web.Application) -> AsyncIterator[None]:
    """The S3 mirror: queue metrics always; workers too unless `shardgate mirror run` has them."""
    # cloud_sync sits above gateway (it reads objects through gateway's services), so it is
    # imported when an app starts, not when the gateway package is imported.
    from cloud_sync import MirrorMetrics, MirrorService

    config = app[CONFIG]
    service = MirrorService(
        config=config,
        outbox=app[MIRROR_OUTBOX],
        catalog=app[CATALOG],
        source=app[OBJECTS],
        metrics=MirrorMetrics.create(app[REGISTRY_KEY]),
        run_workers=config.mirror_in_gateway,
    )
    await service.start()
    yield
    await service.stop()
