"""The mirror as a running thing: a bounded thread pool for boto3, N worker tasks (when this
process runs them), and a refresher that shows queue depth and lag as metrics.

Started and stopped by whoever hosts it: the gateway's cleanup context, or `shardgate mirror
run`. Stopping abandons in-flight jobs; their leases expire and another worker repeats them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

from cloud_sync.metrics import MirrorMetrics
from cloud_sync.s3_sink import S3Sink
from cloud_sync.sink import Sink
from cloud_sync.transfer import Transfer, TransferLimits
from cloud_sync.worker import MirrorWorker, ObjectSource, WorkerRules
from gateway.catalog import Catalog
from gateway.mirror_outbox import MirrorOutbox
from shardgate.config import ConfigError, GatewayConfig

log = logging.getLogger(__name__)
S3_MIN_PART = 5 * 1024 * 1024
STATS_INTERVAL = 2.0
KEEP_FINISHED = 7 * 86400.0  # finished jobs kept this long, for `mirror status` and debugging


def check_mirror_config(config: GatewayConfig) -> None:
    """Refuse settings S3 would refuse later, at start-up instead of on every job."""
    if config.mirror_part_size < S3_MIN_PART:
        raise ConfigError(f"gateway.mirror_part_size must be at least {S3_MIN_PART} (S3's minimum)")
    if config.mirror_workers < 1 or config.mirror_threads < 1:
        raise ConfigError("gateway.mirror_workers and mirror_threads must be at least 1")
    if config.mirror_max_attempts < 1:
        raise ConfigError("gateway.mirror_max_attempts must be at least 1")


class MirrorService:
    def __init__(
        self,
        *,
        config: GatewayConfig,
        outbox: MirrorOutbox,
        catalog: Catalog,
        source: ObjectSource,
        metrics: MirrorMetrics,
        run_workers: bool,
        sink: Sink | None = None,
    ) -> None:
        check_mirror_config(config)
        self._config = config
        self._outbox = outbox
        self._catalog = catalog
        self._source = source
        self._metrics = metrics
        self._run_workers = run_workers and bool(config.mirror_bucket or sink)
        self._sink = sink
        self._pool = ThreadPoolExecutor(config.mirror_threads, thread_name_prefix="mirror")
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self._tasks.append(asyncio.create_task(self._refresh_forever()))
        if not self._run_workers:
            return
        loop = asyncio.get_running_loop()
        sink = self._sink
        if sink is None:  # building a boto3 client takes a while: not on the loop
            sink = await loop.run_in_executor(self._pool, S3Sink.from_config, self._config)
        config = self._config
        transfer = Transfer(
            sink,
            self._pool,
            TransferLimits(config.mirror_multipart_threshold, config.mirror_part_size),
            on_bytes=self._metrics.bytes.inc,
        )
        rules = WorkerRules(
            lease=config.mirror_lease,
            max_attempts=config.mirror_max_attempts,
            backoff_base=config.mirror_backoff_base,
            backoff_cap=config.mirror_backoff_cap,
            prefix=config.mirror_prefix,
        )
        host = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        for n in range(config.mirror_workers):
            worker = MirrorWorker(
                worker_id=f"{host}/{n}",
                outbox=self._outbox,
                catalog=self._catalog,
                source=self._source,
                transfer=transfer,
                rules=rules,
                metrics=self._metrics,
            )
            self._tasks.append(asyncio.create_task(worker.run_forever(config.mirror_poll_interval)))
        log.info(
            "mirror: %d workers copying to bucket %r under %r",
            config.mirror_workers,
            config.mirror_bucket,
            config.mirror_prefix,
        )

    async def refresh(self) -> None:
        now = time.time()
        self._metrics.show(await self._outbox.mirror_summary(now, recent=0), now)

    async def _refresh_forever(self) -> None:
        last_prune = 0.0
        while True:
            try:
                await self.refresh()
                if time.monotonic() - last_prune > 3600:
                    await self._outbox.prune_mirror_jobs(time.time() - KEEP_FINISHED)
                    last_prune = time.monotonic()
            except Exception:
                # Metrics going stale must not end the refresher: log and try next round.
                log.exception("mirror: refreshing queue metrics failed")
            await asyncio.sleep(min(STATS_INTERVAL, self._config.mirror_poll_interval * 4))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        # Threads still uploading finish their current call on their own; nothing waits.
        self._pool.shutdown(wait=False, cancel_futures=True)
