"""ReplicatedReader.candidates: the order in which reads (and presigned GETs) try the nodes."""

from __future__ import annotations

from typing import cast

from gateway_kit import HANDOFFS, PART, PRIMARIES, RING, FakeHealth
from prometheus_client import CollectorRegistry

from gateway.catalog import ObjectRecord
from gateway.metrics import GatewayMetrics
from gateway.node_health import NodeHealth
from gateway.nodes import NodeClient
from gateway.replicated_read import ReplicatedReader

P, H = PRIMARIES, HANDOFFS
VERSION = "0" * 20


def order(
    replicas: tuple[str, ...], down: set[str] | None = None, writing: tuple[str, ...] = ()
) -> list[str]:
    def still_writing(bucket: str, key: str, version: str) -> tuple[str, ...]:
        return writing if (bucket, key, version) == ("b", "k", VERSION) else ()

    reader = ReplicatedReader(
        cast(NodeClient, None),
        cast(NodeHealth, FakeHealth(down)),
        GatewayMetrics.create(CollectorRegistry()),
        writing=still_writing,
    )
    record = ObjectRecord("b", "k", VERSION, 1, "e" * 32, "text/plain", replicas)
    return [node.id for node in reader.candidates(RING, PART, record)]


def test_recorded_primaries_come_in_the_partitions_order() -> None:
    assert order((P[2], P[0], P[1])) == P


def test_a_recorded_handoff_comes_after_the_recorded_primaries() -> None:
    """The handoff stood in for P[0] at the write and may have handed its copy back since; the
    primaries that took the write hold it for sure, and P[0] may not have been repaired yet."""
    assert order((H[0], P[1], P[2])) == [P[1], P[2], H[0], P[0]]


def test_nodes_believed_down_go_last() -> None:
    assert order((P[0], P[1], P[2]), down={P[0]}) == [P[1], P[2], P[0]]


def test_a_node_still_writing_the_version_goes_after_those_that_hold_it() -> None:
    """An upload answered at W names its last replica a holder before that one commits: a read
    right after the answer asks the others first (the late one may be stopped, and would then
    hold the read for node_io_timeout), and a node believed down after it."""
    assert order((P[0], P[1], P[2]), writing=(P[0],)) == [P[1], P[2], P[0]]
    assert order((P[0], P[1], P[2]), down={P[1]}, writing=(P[0],)) == [P[2], P[0], P[1]]
    # Before a primary the write never reached, which lacks the version for sure.
    assert order((H[0], P[1], P[2]), writing=(P[1],)) == [P[2], H[0], P[1], P[0]]
