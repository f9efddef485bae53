"""The S3 mirror's outbox as the catalog keeps it: jobs written in the same transaction as the
object change they copy, claimed under a lease, and finished, retried, parked or superseded.

Per key, only the oldest unfinished job can be claimed, and never while another job for that
key is leased, so jobs for one key run one at a time, in the order their changes committed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol

MirrorOp = Literal["put", "delete"]
JobEnd = Literal["done", "failed", "superseded"]


@dataclass(frozen=True)
class MirrorJob:
    id: int
    op: MirrorOp
    bucket: str
    key: str
    version: str
    attempts: int  # counting the one now claimed
    created: float
    last_error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "op": self.op,
            "bucket": self.bucket,
            "key": self.key,
            "version": self.version,
            "attempts": self.attempts,
            "created": self.created,
            "last_error": self.last_error,
        }


@dataclass(frozen=True)
class MirrorSummary:
    queued: int  # unfinished and not parked (waiting, retrying or in flight)
    failed: int  # parked after the last attempt
    oldest_queued: float | None  # creation time of the oldest queued job
    recent_failures: tuple[MirrorJob, ...]

    def lag(self, now: float) -> float:
        return max(0.0, now - self.oldest_queued) if self.oldest_queued is not None else 0.0

    def to_json(self, now: float) -> dict[str, Any]:
        return {
            "depth": {"queued": self.queued, "failed": self.failed},
            "lag_seconds": round(self.lag(now), 3),
            "failed": self.failed,
            "recent_failures": [job.to_json() for job in self.recent_failures],
        }


class MirrorOutbox(Protocol):
    async def claim_mirror_job(self, worker: str, now: float, lease: float) -> MirrorJob | None:
        """The oldest claimable job, leased to `worker` until now + lease; None if none is."""

    async def renew_mirror_lease(self, job_id: int, worker: str, until: float) -> bool:
        """Extend a lease still held by `worker`; False if it was lost."""

    async def end_mirror_job(
        self,
        job: MirrorJob,
        worker: str,
        end: JobEnd,
        now: float,
        *,
        url: str | None = None,
        etag: str | None = None,
        error: str | None = None,
    ) -> bool:
        """Finish the job (and, for a put, record the object's mirror state), if still held."""

    async def retry_mirror_job(
        self, job: MirrorJob, worker: str, at: float, error: str
    ) -> bool: ...

    async def mirror_summary(self, now: float, recent: int) -> MirrorSummary: ...

    async def requeue_mirror_jobs(self, job_id: int | None, now: float) -> int:
        """Put parked jobs (one, or all when job_id is None) back in the queue; how many."""

    async def prune_mirror_jobs(self, before: float) -> int:
        """Forget finished jobs that ended before `before`; parked ones are kept."""
