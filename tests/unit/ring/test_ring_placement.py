"""Ring invariants: replica sets, handoffs, zones, lookups and what placement depends on."""

import dataclasses

import pytest
from uhashring import HashRing

from ring import KetamaStrategy, Node, Ring, RingError, RingSpec
from ring.strategies import KETAMA_VNODES

STRATEGIES = ["ketama", "rendezvous"]


def _nodes(count: int, zones: int = 0) -> tuple[Node, ...]:
    return tuple(
        Node(
            f"n{i}",
            f"http://127.0.0.1:{9000 + i}",
            zone=f"z{i % zones}" if zones else "",
        )
        for i in range(1, count + 1)
    )


def _ring(strategy: str, nodes: tuple[Node, ...], replicas: int = 3, power: int = 12) -> Ring:
    return Ring(RingSpec(1, power, replicas, nodes, strategy))


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_primaries_handoffs_and_preference_partition_the_nodes(strategy: str) -> None:
    ring = _ring(strategy, _nodes(6))
    all_ids = {node.id for node in ring.nodes}
    for partition in range(2**ring.partition_power):
        primaries = [node.id for node in ring.primaries(partition)]
        handoffs = [node.id for node in ring.handoffs(partition)]
        assert len(set(primaries)) == len(primaries) == 3
        assert not set(primaries) & set(handoffs)
        assert ring.preference(partition) == ring.primaries(partition) + ring.handoffs(partition)
        assert len(handoffs) == 3
        assert set(primaries) | set(handoffs) == all_ids


# The strategy orders are part of the on-disk format; a change (or a uhashring upgrade that
# changes its continuum) must fail here before it silently moves data.
@pytest.mark.parametrize(
    ("strategy", "expected"),
    [
        (
            "ketama",
            {
                0: ["n2", "n4", "n3", "n5", "n1"],
                1: ["n1", "n3", "n4", "n2", "n5"],
                4095: ["n5", "n4", "n1", "n2", "n3"],
            },
        ),
        (
            "rendezvous",
            {
                0: ["n4", "n2", "n3", "n5", "n1"],
                1: ["n3", "n1", "n4", "n2", "n5"],
                4095: ["n5", "n2", "n1", "n3", "n4"],
            },
        ),
    ],
)
def test_preference_orders_are_pinned(strategy: str, expected: dict[int, list[str]]) -> None:
    ring = _ring(strategy, _nodes(5))
    for partition, ids in expected.items():
        assert [node.id for node in ring.preference(partition)] == ids


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_placement_ignores_urls_and_listing_order(strategy: str) -> None:
    nodes = _nodes(5)
    moved = tuple(
        dataclasses.replace(node, url=f"http://10.0.0.{i}:{12000 + i}")
        for i, node in enumerate(reversed(nodes))
    )
    before, after = _ring(strategy, nodes), _ring(strategy, moved)
    for partition in range(2**12):
        assert [n.id for n in before.preference(partition)] == [
            n.id for n in after.preference(partition)
        ]


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize(("zones", "nodes"), [(3, 6), (2, 6), (3, 5)])
def test_primaries_span_distinct_zones(strategy: str, zones: int, nodes: int) -> None:
    ring = _ring(strategy, _nodes(nodes, zones=zones))
    for partition in range(2**ring.partition_power):
        primaries = ring.primaries(partition)
        assert len(primaries) == 3
        assert len({node.zone for node in primaries}) == min(zones, 3)
        # Handoffs keep the strategy order, so zone-skipping only reorders the front.
        rank = {node.id: i for i, node in enumerate(ring.preference(partition))}
        assert [rank[node.id] for node in ring.handoffs(partition)] == sorted(
            rank[node.id] for node in ring.handoffs(partition)
        )


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_zone_choice_skips_same_zone_nodes_then_fills_in_order(strategy: str) -> None:
    # Two zones, three replicas: a zone-b node is pulled forward, the third slot is the
    # most preferred node left.
    nodes = (
        *(Node(f"a{i}", f"http://a{i}:1", zone="a") for i in range(4)),
        Node("b0", "http://b0:1", zone="b"),
    )
    ring = _ring(strategy, nodes)
    for partition in range(2**ring.partition_power):
        order = ring.preference(partition)
        primaries = ring.primaries(partition)
        assert "b0" in [node.id for node in primaries]
        a_nodes = [node for node in order if node.zone == "a"]
        assert [node for node in primaries if node.zone == "a"] == a_nodes[:2]


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_more_replicas_than_nodes_uses_every_node(strategy: str) -> None:
    ring = _ring(strategy, _nodes(2), replicas=3)
    for partition in range(2**ring.partition_power):
        assert {node.id for node in ring.primaries(partition)} == {"n1", "n2"}
        assert ring.handoffs(partition) == ()


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_partitions_of_matches_primaries(strategy: str) -> None:
    ring = _ring(strategy, _nodes(5), power=8)
    held = {node.id: set(ring.partitions_of(node.id)) for node in ring.nodes}
    for partition in range(2**8):
        for node in ring.nodes:
            assert (partition in held[node.id]) == (node in ring.primaries(partition))
    assert sum(len(parts) for parts in held.values()) == 3 * 2**8


def test_lookups_reject_unknown_nodes_and_partitions() -> None:
    ring = _ring("ketama", _nodes(3), power=4)
    assert ring.node("n2").url == "http://127.0.0.1:9002"
    with pytest.raises(RingError, match="unknown node id 'n9'"):
        ring.node("n9")
    with pytest.raises(RingError, match="unknown node id"):
        ring.partitions_of("n9")
    for partition in (-1, 16):
        with pytest.raises(RingError, match="out of range"):
            ring.primaries(partition)


def test_ring_exposes_its_spec_and_partition_of_keys() -> None:
    spec = RingSpec(7, 10, 2, _nodes(3), "rendezvous")
    ring = Ring(spec)
    assert (ring.spec, ring.epoch, ring.partition_power, ring.replicas) == (spec, 7, 10, 2)
    assert ring.nodes == spec.nodes
    # Pinned in test_ring_hashing: md5("photos/cat.jpg") has top 10 bits 910.
    assert ring.partition("photos", "cat.jpg") == 3641 >> 2


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_extreme_weights_keep_every_node(strategy: str) -> None:
    nodes = (Node("big", "http://b:1", weight=100.0), Node("tiny", "http://t:1", weight=1e-9))
    ring = _ring(strategy, nodes, replicas=1)
    for partition in range(2**12):
        assert {node.id for node in ring.preference(partition)} == {"big", "tiny"}


def test_ketama_order_is_uhashring_range() -> None:
    """The contract KetamaStrategy computes faster: the unique walk of uhashring's continuum."""
    nodes = [
        Node(f"n{i}", f"http://h{i}:1", weight=weight)
        for i, weight in enumerate((0.05, 1.0, 3.0, 1.5, 1.0))
    ]
    reference = HashRing(
        nodes={
            node.id: {"vnodes": max(1, round(node.weight * KETAMA_VNODES)), "weight": 1}
            for node in nodes
        },
        hash_fn="ketama",
        replicas=4,
    )
    strategy = KetamaStrategy(nodes)
    for partition in range(2**10):
        walk = [conf["nodename"] for conf in reference.range(str(partition), unique=True)]
        assert strategy.order(partition) == walk
