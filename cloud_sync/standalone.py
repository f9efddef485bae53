"""`shardgate mirror run`: the mirror's workers in a process of their own, beside the gateway
(set `mirror_in_gateway = false` there). It shares the gateway's config, catalog and ring, and
reads objects from the replicas the same way the gateway does."""

from __future__ import annotations

import asyncio
import logging
import signal

from prometheus_client import start_http_server

from cloud_sync.metrics import MirrorMetrics
from cloud_sync.service import MirrorService
from gateway.app import node_access, object_service
from gateway.metrics import GatewayMetrics
from gateway.node_http import NodeConnections
from gateway.replicated_write import ReplicatedWriter
from gateway.sqlite_catalog import SqliteCatalog
from ring import Ring, load_ring_file
from shardgate.config import GatewayConfig
from shardgate.process_metrics import service_registry

log = logging.getLogger(__name__)


async def run_mirror(config: GatewayConfig, metrics_port: int | None) -> None:
    """Run workers until SIGINT or SIGTERM; metrics on `metrics_port` when one is given."""
    ring = Ring(load_ring_file(config.ring_file))
    registry = service_registry()
    if metrics_port is not None:
        start_http_server(metrics_port, config.host, registry=registry)
    catalog = SqliteCatalog(config.catalog_path)
    await catalog.open()
    try:
        node_metrics = GatewayMetrics.create(registry)
        connections = NodeConnections(
            connect_timeout=config.node_connect_timeout,
            on_open=node_metrics.node_connections_opened.inc,
        )
        try:
            client, health = node_access(connections, config)
            # Only reads happen here; the writer is what ObjectService is built with.
            writer = ReplicatedWriter(
                client, health, node_metrics, stall_timeout=60.0, repairs=catalog
            )
            objects = object_service(config, ring, catalog, client, health, writer, node_metrics)
            service = MirrorService(
                config=config,
                outbox=catalog,
                catalog=catalog,
                source=objects,
                metrics=MirrorMetrics.create(registry),
                run_workers=True,
            )
            await service.start()
            print(f"shardgate mirror running {config.mirror_workers} workers", flush=True)
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            await stop.wait()
            log.info("shardgate mirror stopping")
            await service.stop()
        finally:
            connections.close()
    finally:
        await catalog.close()
