"""The asynchronous S3 mirror: outbox jobs (kept by the catalog) claimed under a lease by
workers that stream objects from a replica into S3 through boto3, in a bounded thread pool."""

from cloud_sync.backoff import backoff_delay
from cloud_sync.memory_sink import MemorySink
from cloud_sync.metrics import MirrorMetrics
from cloud_sync.s3_sink import S3Sink
from cloud_sync.service import MirrorService, check_mirror_config
from cloud_sync.sink import Sink, SinkError, Stored
from cloud_sync.transfer import MirrorMismatch, Transfer, TransferLimits
from cloud_sync.worker import MirrorWorker, WorkerRules

__all__ = [
    "MemorySink",
    "MirrorMetrics",
    "MirrorMismatch",
    "MirrorService",
    "MirrorWorker",
    "S3Sink",
    "Sink",
    "SinkError",
    "Stored",
    "Transfer",
    "TransferLimits",
    "WorkerRules",
    "backoff_delay",
    "check_mirror_config",
]
