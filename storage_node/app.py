"""create_app(config) is the only way to build a storage node."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiohttp
from aiohttp import web

from ring import RingWatch
from shardgate.config import NodeConfig
from shardgate.connection_trace import counting_connections
from shardgate.periodic import every
from shardgate.process_metrics import service_registry
from shardgate.web import REGISTRY_KEY, base_middlewares, stamp_responses
from storage_node.auth import signature_middleware
from storage_node.byte_budget import ByteBudget
from storage_node.disk import DiskStore
from storage_node.keys import (
    CONFIG,
    INLINE_READS,
    METRICS,
    PEERS,
    QUARANTINE,
    REPLICATOR,
    RINGS,
    SCRUBBER,
    STORE,
    SWEEPER,
)
from storage_node.metrics import NodeMetrics, refresh_disk_gauges, refresh_inventory
from storage_node.peers import PeerClient
from storage_node.replicator import Replicator
from storage_node.replicator_metrics import ReplicatorMetrics
from storage_node.routes import ROUTES
from storage_node.scrubber import Quarantine, Scrubber
from storage_node.scrubber_metrics import ScrubberMetrics
from storage_node.store import Store
from storage_node.sweeper import Sweeper
from storage_node.sweeper_metrics import SweeperMetrics

log = logging.getLogger(__name__)


def create_app(config: NodeConfig, store: Store | None = None) -> web.Application:
    """A node serving `store` (by default the disk store in config.data_dir)."""
    registry = service_registry()
    app = web.Application(
        middlewares=[*base_middlewares(registry), signature_middleware(config)],
        client_max_size=1024**2,
    )
    app[CONFIG] = config
    if store is None:
        store = DiskStore(config.data_dir, fsync=config.fsync, io_threads=config.io_threads)
    app[STORE] = store
    app[INLINE_READS] = ByteBudget(config.inline_read_bytes)
    app[REGISTRY_KEY] = registry
    app[METRICS] = NodeMetrics.create(registry)
    app.cleanup_ctx.append(_peers)
    if isinstance(store, DiskStore):
        app[SWEEPER] = Sweeper(
            store,
            grace=config.sweep_grace,
            tombstone_age=config.tombstone_reclaim_age,
            metrics=SweeperMetrics.create(registry),
        )
        app.cleanup_ctx.append(every(lambda a: a[CONFIG].sweep_interval, _sweep))
        scrubbing = ScrubberMetrics.create(registry)
        store.on_damaged = scrubbing.corrupt.labels("lookup").inc
        app[QUARANTINE] = Quarantine(store, scrubbing, lambda: app.get(REPLICATOR))
        app[SCRUBBER] = Scrubber(store, app[QUARANTINE], scrubbing, rate=config.scrub_rate)
        app.cleanup_ctx.append(every(lambda a: a[CONFIG].scrub_interval, _scrub))
        if config.ring_file:
            app[RINGS] = RingWatch(Path(config.ring_file))
            # After _peers: the replicator pushes through the peer client.
            app.cleanup_ctx.append(_replicator_of(store))
            app.cleanup_ctx.append(every(lambda a: a[CONFIG].replicate_interval, _replicate))
    stamp_responses(app)
    app.cleanup_ctx.append(
        every(lambda a: a[CONFIG].metrics_interval, _refresh_disk_gauges, immediately=True)
    )
    app.cleanup_ctx.append(
        every(lambda a: a[CONFIG].inventory_interval, _refresh_inventory, immediately=True)
    )
    app.on_cleanup.append(_close_store)
    app.add_routes(ROUTES)
    return app


async def _close_store(app: web.Application) -> None:
    store = app[STORE]
    if isinstance(store, DiskStore):
        store.close()


async def _peers(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    trace = counting_connections(app[METRICS].peer_connections_opened)
    async with aiohttp.ClientSession(auto_decompress=False, trace_configs=[trace]) as session:
        app[PEERS] = PeerClient(session, config.cluster_secret, config.chunk_size)
        yield


async def _sweep(app: web.Application) -> None:
    """One sweep; a failed one is logged and the next tries again."""
    try:
        report = await app[SWEEPER].sweep(dry_run=False)
    except OSError as exc:
        log.warning("sweep failed; will retry: %s", exc)
        return
    if report.total_files or report.errors:
        log.info(
            "sweep reclaimed %d files, %d bytes (%s); %d errors",
            report.total_files,
            report.total_bytes,
            ", ".join(f"{k} {n}" for k, n in report.files.items() if n),
            report.errors,
        )


async def _scrub(app: web.Application) -> None:
    try:
        report = await app[SCRUBBER].scrub_once()
    except OSError as exc:
        log.warning("scrub failed; will retry: %s", exc)
        return
    log.info(
        "scrub pass: %d objects, %d bytes checked, %d corrupt",
        report.objects,
        report.bytes,
        report.corrupt,
    )


async def _replicate(app: web.Application) -> None:
    report = await app[REPLICATOR].run_once()
    if report.pushed or report.tombstones or report.handoffs_dropped:
        log.info(
            "replication pass: %d versions and %d tombstones pushed, %d handoff copies "
            "dropped, %d partitions of %d in sync, %d errors",
            report.pushed,
            report.tombstones,
            report.handoffs_dropped,
            report.in_sync,
            report.partitions,
            report.errors,
        )


def _replicator_of(store: DiskStore) -> Callable[[web.Application], AsyncIterator[None]]:
    async def context(app: web.Application) -> AsyncIterator[None]:
        config = app[CONFIG]
        app[REPLICATOR] = Replicator(
            store,
            config.node_id,
            app[RINGS],
            app[PEERS],
            ReplicatorMetrics.create(app[REGISTRY_KEY]),
        )
        yield

    return context


async def _refresh_disk_gauges(app: web.Application) -> None:
    await refresh_disk_gauges(app[METRICS], app[STORE])


async def _refresh_inventory(app: web.Application) -> None:
    await refresh_inventory(app[METRICS], app[STORE])
