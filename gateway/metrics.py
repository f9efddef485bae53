"""The gateway's Prometheus series, registered on the app's own registry."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge


@dataclass(frozen=True)
class GatewayMetrics:
    received_bytes: Counter
    sent_bytes: Counter
    uploads_in_progress: Gauge
    replica_write_failures: Counter
    quorum_failures: Counter
    handoff_writes: Counter
    repairs_queued: Counter
    read_failovers: Counter
    node_up: Gauge
    admission_rejections: Counter
    parts_received: Counter

    @classmethod
    def create(cls, registry: CollectorRegistry) -> GatewayMetrics:
        return cls(
            received_bytes=Counter(
                "shardgate_gateway_received_bytes",
                "Object bytes received from clients.",
                registry=registry,
            ),
            sent_bytes=Counter(
                "shardgate_gateway_sent_bytes", "Object bytes sent to clients.", registry=registry
            ),
            uploads_in_progress=Gauge(
                "shardgate_gateway_uploads_in_progress",
                "Uploads streaming through now.",
                registry=registry,
            ),
            replica_write_failures=Counter(
                "shardgate_gateway_replica_write_failures",
                "Replica writes that failed, by node.",
                ["node"],
                registry=registry,
            ),
            quorum_failures=Counter(
                "shardgate_gateway_quorum_failures",
                "Operations that could not reach their quorum, by operation.",
                ["op"],
                registry=registry,
            ),
            handoff_writes=Counter(
                "shardgate_gateway_handoff_writes",
                "Replica writes sent to a handoff node because a primary was down.",
                registry=registry,
            ),
            repairs_queued=Counter(
                "shardgate_gateway_repairs_queued",
                "Replicas recorded for repair (missed writes, handoff copies).",
                registry=registry,
            ),
            read_failovers=Counter(
                "shardgate_gateway_read_failovers",
                "Reads that moved to another replica, before or during the body.",
                registry=registry,
            ),
            node_up=Gauge(
                "shardgate_gateway_node_up",
                "1 if the node answers its health probe.",
                ["node"],
                registry=registry,
            ),
            parts_received=Counter(
                "shardgate_gateway_parts_received",
                "Multipart parts stored (a part sent again counts again).",
                registry=registry,
            ),
            admission_rejections=Counter(
                "shardgate_gateway_admission_rejections",
                "Requests refused at once by the bulkhead, by kind and code (SlowDown: per key).",
                ["kind", "code"],
                registry=registry,
            ),
        )
