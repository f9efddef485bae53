"""gateway.repairs.RepairDrain against fakes: a repair is resolved once a node pushes the
version, and dropped only when no node holds it and the catalog wants it no more."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from gateway_kit import RING, FakeHealth

from gateway.catalog import Catalog, Repair
from gateway.node_health import NodeHealth
from gateway.nodes import NodeClient, NodeFailed, NodeUnavailable, ObjectAddress
from gateway.repairs import RepairDrain
from ring import Node, object_hash, partition_of

KEY = "photos/cat.jpg"


PARTITION = partition_of(object_hash("bkt", KEY), RING.partition_power)
PRIMARIES = [node.id for node in RING.primaries(PARTITION)]


def missed_on_first_primary() -> Repair:
    return Repair("bkt", KEY, "0" * 20, PRIMARIES[0], "late")


class FakeCatalog:
    def __init__(self, repair: Repair, *, wanted: bool) -> None:
        self.repairs = [repair]
        self.wanted = wanted
        self.resolved: list[Repair] = []

    async def pending_repairs(self, limit: int) -> list[Repair]:
        return list(self.repairs)

    async def resolve_repairs(self, repairs: Sequence[Repair]) -> None:
        self.resolved.extend(repairs)

    async def unwanted_replicas(self, replicas: Sequence[tuple[str, str, str]]) -> list[int]:
        return [] if self.wanted else list(range(len(replicas)))


class FakeClient:
    """Every source answers with `answers[node id]`: a push status, or an exception; each holds
    `sizes[node id]` bytes (4096 unless told; None: nothing that new)."""

    def __init__(self, answers: dict[str, Any], sizes: dict[str, int | None] | None = None) -> None:
        self.answers = answers
        self.sizes = sizes or {}
        self.asked: list[str] = []
        self.pushed: list[tuple[str, str, int]] = []

    async def held_size(self, node: Node, addr: ObjectAddress, version: str) -> int | None:
        return self.sizes.get(node.id, 4096)

    async def push(
        self, node: Node, addr: ObjectAddress, version: str, peer: Node, *, size: int
    ) -> int:
        self.asked.append(node.id)
        self.pushed.append((node.id, peer.id, size))
        answer = self.answers.get(node.id, NodeFailed(node, "holds nothing as new", 404))
        if isinstance(answer, BaseException):
            raise answer
        return int(answer)


def drain(client: FakeClient, catalog: FakeCatalog, down: set[str] | None = None) -> RepairDrain:
    health = cast(NodeHealth, FakeHealth(down))
    return RepairDrain(lambda: RING, cast(Catalog, catalog), cast(NodeClient, client), health)


async def test_a_push_from_any_holder_resolves_the_repair() -> None:
    repair = missed_on_first_primary()
    catalog = FakeCatalog(repair, wanted=True)
    client = FakeClient({PRIMARIES[2]: 201})
    assert await drain(client, catalog).drain_once() == 1
    assert catalog.resolved == [repair]


async def test_a_version_no_node_holds_and_nothing_wants_is_dropped() -> None:
    repair = missed_on_first_primary()
    catalog = FakeCatalog(repair, wanted=False)
    client = FakeClient({})
    assert await drain(client, catalog).drain_once() == 1
    assert catalog.resolved == [repair]
    assert repair.node_id not in client.asked and len(client.asked) == len(RING.nodes) - 1


async def test_a_version_the_catalog_still_wants_stays_queued() -> None:
    catalog = FakeCatalog(missed_on_first_primary(), wanted=True)
    assert await drain(FakeClient({}), catalog).drain_once() == 0
    assert catalog.resolved == []


async def test_a_source_that_cannot_be_asked_keeps_the_repair_queued() -> None:
    repair = missed_on_first_primary()
    catalog = FakeCatalog(repair, wanted=False)
    unreachable = NodeUnavailable(RING.nodes[0], "connection refused")
    client = FakeClient({node.id: unreachable for node in RING.nodes[:2]})
    assert await drain(client, catalog).drain_once() == 0, "an unreachable node may hold it"
    assert catalog.resolved == []


async def test_a_node_believed_down_may_hold_it_so_the_repair_stays() -> None:
    catalog = FakeCatalog(missed_on_first_primary(), wanted=False)
    client = FakeClient({})
    assert await drain(client, catalog, down={PRIMARIES[1]}).drain_once() == 0
    assert catalog.resolved == [] and PRIMARIES[1] not in client.asked


async def test_the_push_is_bounded_by_the_size_its_source_holds() -> None:
    repair = missed_on_first_primary()
    catalog = FakeCatalog(repair, wanted=True)
    client = FakeClient({PRIMARIES[2]: 201}, sizes={PRIMARIES[1]: None, PRIMARIES[2]: 70 << 30})
    assert await drain(client, catalog).drain_once() == 1
    assert client.pushed == [(PRIMARIES[2], PRIMARIES[0], 70 << 30)], "no push from n2: too old"


async def test_sources_holding_nothing_that_new_by_their_head_let_the_repair_drop() -> None:
    repair = missed_on_first_primary()
    catalog = FakeCatalog(repair, wanted=False)
    others = [node.id for node in RING.nodes if node.id != repair.node_id]
    client = FakeClient({}, sizes=dict.fromkeys(others))
    assert await drain(client, catalog).drain_once() == 1
    assert catalog.resolved == [repair] and client.pushed == []
