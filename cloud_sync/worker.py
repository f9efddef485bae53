"""One mirror worker: claim a job under a lease, bring S3 in line with the catalog's newest word
on that key, and finish, retry (backoff with jitter) or park the job.

Jobs are checked against the catalog before anything is sent: a put for a version that is no
longer current, or a delete of a key that has a newer live version, is superseded, so an older
job can never undo a newer change even when `mirror retry` brings it back late.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from cloud_sync.backoff import backoff_delay
from cloud_sync.metrics import MirrorMetrics
from cloud_sync.sink import SinkError
from cloud_sync.transfer import MirrorMismatch, Transfer
from gateway.catalog import Catalog, ObjectRecord
from gateway.errors import GatewayError
from gateway.mirror_outbox import JobEnd, MirrorJob, MirrorOutbox
from gateway.nodes import NodeError
from shardgate.internal_api import VERSION_HEADER

log = logging.getLogger(__name__)
READ_CHUNK = 256 * 1024


class StaleReplica(Exception):
    """The replica served another version than the job's (the key changed meanwhile)."""


# What a failed attempt can raise; each is retried, then parked with its message.
RETRYABLE = (
    SinkError,
    MirrorMismatch,
    StaleReplica,
    NodeError,
    GatewayError,
    OSError,
    asyncio.TimeoutError,
)


class ObjectBody(Protocol):
    @property
    def headers(self) -> Mapping[str, str]: ...

    def chunks(self, size: int) -> AsyncIterator[bytes]: ...


class ObjectSource(Protocol):
    """How the worker reads an object: ObjectService.open (replica failover, manifests)."""

    async def open(self, record: ObjectRecord, range_header: str | None) -> ObjectBody: ...


@dataclass(frozen=True)
class WorkerRules:
    lease: float
    max_attempts: int
    backoff_base: float
    backoff_cap: float
    prefix: str = ""

    def s3_key(self, bucket: str, key: str) -> str:
        return f"{self.prefix}{bucket}/{key}"


class MirrorWorker:
    def __init__(
        self,
        *,
        worker_id: str,
        outbox: MirrorOutbox,
        catalog: Catalog,
        source: ObjectSource,
        transfer: Transfer,
        rules: WorkerRules,
        metrics: MirrorMetrics,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self.worker_id = worker_id
        self._outbox = outbox
        self._catalog = catalog
        self._source = source
        self._transfer = transfer
        self._rules = rules
        self._metrics = metrics
        self._clock = clock
        self._rng = rng or random.Random()

    async def run_forever(self, poll_interval: float) -> None:
        while True:
            if not await self.run_once():
                await asyncio.sleep(poll_interval)

    async def run_once(self) -> bool:
        """Claim and handle one job; False when none was claimable."""
        job = await self._outbox.claim_mirror_job(self.worker_id, self._clock(), self._rules.lease)
        if job is None:
            return False
        keeper = asyncio.create_task(self._keep_lease(job))
        try:
            end, url, etag = await self._execute(job)
        except RETRYABLE as exc:
            if await self._obsolete(job):  # the key changed under the attempt: nothing to retry
                await self._end(job, "superseded")
            else:
                await self._attempt_failed(job, f"{type(exc).__name__}: {exc}")
        except Exception as exc:
            # A bug must not kill the worker loop: it is recorded on the job like any other
            # failure (so it is visible and eventually parked) and logged with its traceback.
            log.exception("mirror job %d failed unexpectedly", job.id)
            await self._attempt_failed(job, f"{type(exc).__name__}: {exc}")
        else:
            await self._end(job, end, url=url, etag=etag)
        finally:
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper
        return True

    @staticmethod
    def _outdated(job: MirrorJob, current: ObjectRecord | None) -> bool:
        """A put of a version no longer current, or a delete followed by a newer write."""
        if job.op == "delete":
            return current is not None and current.version > job.version
        return current is None or current.version != job.version

    async def _obsolete(self, job: MirrorJob) -> bool:
        return self._outdated(job, await self._catalog.get_object(job.bucket, job.key))

    async def _execute(self, job: MirrorJob) -> tuple[JobEnd, str | None, str | None]:
        current = await self._catalog.get_object(job.bucket, job.key)
        if self._outdated(job, current):
            return "superseded", None, None
        s3_key = self._rules.s3_key(job.bucket, job.key)
        if job.op == "delete" or current is None:
            await self._transfer.delete(s3_key)
            return "done", None, None
        body = await self._source.open(current, None)
        served = body.headers.get(VERSION_HEADER, current.version)
        if served != current.version:
            raise StaleReplica(f"asked for version {current.version}, a replica served {served}")
        metadata = {"shardgate-version": current.version, "shardgate-etag": current.etag}
        plain_md5 = None if current.manifest else current.etag
        etag = await self._transfer.put(
            s3_key, body.chunks(READ_CHUNK), current.size, plain_md5, metadata
        )
        return "done", self._transfer.sink.url(s3_key), etag

    async def _keep_lease(self, job: MirrorJob) -> None:
        """Renew the lease while the job runs (a 1 GiB upload outlasts one lease)."""
        while True:
            await asyncio.sleep(self._rules.lease / 3)
            until = self._clock() + self._rules.lease
            if not await self._outbox.renew_mirror_lease(job.id, self.worker_id, until):
                log.warning("mirror job %d: lease lost; another worker may repeat it", job.id)
                return

    async def _attempt_failed(self, job: MirrorJob, error: str) -> None:
        if job.attempts >= self._rules.max_attempts:
            log.error("mirror job %d parked after %d attempts: %s", job.id, job.attempts, error)
            await self._end(job, "failed", error=error)
            return
        delay = backoff_delay(
            job.attempts, self._rules.backoff_base, self._rules.backoff_cap, self._rng
        )
        log.info(
            "mirror job %d attempt %d failed (%s); retry in %.1f s",
            job.id,
            job.attempts,
            error,
            delay,
        )
        await self._outbox.retry_mirror_job(job, self.worker_id, self._clock() + delay, error)
        self._metrics.jobs.labels(job.op, "retry").inc()

    async def _end(
        self,
        job: MirrorJob,
        end: JobEnd,
        *,
        url: str | None = None,
        etag: str | None = None,
        error: str | None = None,
    ) -> None:
        held = await self._outbox.end_mirror_job(
            job, self.worker_id, end, self._clock(), url=url, etag=etag, error=error
        )
        if not held:
            log.warning("mirror job %d was taken over before it ended here", job.id)
        self._metrics.jobs.labels(job.op, end).inc()
