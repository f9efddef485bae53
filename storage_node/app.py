"""create_app(config) is the only way to build a storage node."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web
from prometheus_client import CollectorRegistry

from shardgate.config import NodeConfig
from shardgate.web import REGISTRY_KEY, background_task, base_middlewares, stamp_responses
from storage_node.auth import signature_middleware
from storage_node.disk import DiskStore
from storage_node.keys import CONFIG, METRICS, PEERS, STORE, SWEEPER
from storage_node.metrics import NodeMetrics, refresh_disk_gauges, refresh_inventory
from storage_node.objects import stamp_validators
from storage_node.peers import PeerClient
from storage_node.routes import ROUTES
from storage_node.store import Store
from storage_node.sweeper import Sweeper
from storage_node.sweeper_metrics import SweeperMetrics

log = logging.getLogger(__name__)
_SWEEPS = web.AppKey("sweeps", asyncio.Task[None])


def create_app(config: NodeConfig, store: Store | None = None) -> web.Application:
    """A node serving `store` (by default the disk store in config.data_dir)."""
    registry = CollectorRegistry()
    app = web.Application(
        middlewares=[*base_middlewares(registry), signature_middleware(config)],
        client_max_size=1024**2,
    )
    app[CONFIG] = config
    if store is None:
        store = DiskStore(config.data_dir, fsync=config.fsync, io_threads=config.io_threads)
    app[STORE] = store
    app[REGISTRY_KEY] = registry
    app[METRICS] = NodeMetrics.create(registry)
    if isinstance(store, DiskStore):
        app[SWEEPER] = Sweeper(
            store,
            grace=config.sweep_grace,
            tombstone_age=config.tombstone_reclaim_age,
            metrics=SweeperMetrics.create(registry),
        )
        app.cleanup_ctx.append(_periodic_sweep)
    app.on_response_prepare.append(stamp_validators)
    stamp_responses(app)
    app.cleanup_ctx.append(_peers)
    app.cleanup_ctx.append(background_task(_disk_gauges))
    app.cleanup_ctx.append(background_task(_inventory))
    app.on_cleanup.append(_close_store)
    app.add_routes(ROUTES)
    return app


async def _close_store(app: web.Application) -> None:
    store = app[STORE]
    if isinstance(store, DiskStore):
        store.close()


async def _peers(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    async with aiohttp.ClientSession(auto_decompress=False) as session:
        app[PEERS] = PeerClient(session, config.cluster_secret, config.chunk_size)
        yield


async def _periodic_sweep(app: web.Application) -> AsyncIterator[None]:
    """Sweep every sweep_interval seconds; a failed pass is logged and the next one tries again."""
    interval = app[CONFIG].sweep_interval

    async def sweep_forever() -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                report = await app[SWEEPER].sweep(dry_run=False)
            except OSError as exc:
                log.warning("sweep failed; next in %.0fs: %s", interval, exc)
                continue
            if report.total_files or report.errors:
                log.info(
                    "sweep reclaimed %d files, %d bytes (%s); %d errors",
                    report.total_files,
                    report.total_bytes,
                    ", ".join(f"{k} {n}" for k, n in report.files.items() if n),
                    report.errors,
                )

    if interval > 0:
        app[_SWEEPS] = asyncio.create_task(sweep_forever())
    yield
    if interval > 0:
        app[_SWEEPS].cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await app[_SWEEPS]


async def _disk_gauges(app: web.Application) -> None:
    await refresh_disk_gauges(app[METRICS], app[STORE], app[CONFIG].metrics_interval)


async def _inventory(app: web.Application) -> None:
    await refresh_inventory(app[METRICS], app[STORE], app[CONFIG].inventory_interval)
