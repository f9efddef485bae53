"""Balance, movement and weights of both strategies at P=12, N=3 (the defaults).

Shares count replica slots: one per (partition, primary) pair, 3 * 4096 in all.
"""

import functools
import itertools
from collections import Counter

import pytest

from ring import Node, Ring, RingSpec

STRATEGIES = ["ketama", "rendezvous"]
POWER = 12
PARTITIONS = 2**POWER
REPLICAS = 3


@functools.cache
def _ring(strategy: str, weights: tuple[float, ...]) -> Ring:
    nodes = tuple(
        Node(f"n{i}", f"http://127.0.0.1:{9000 + i}", weight=weight)
        for i, weight in enumerate(weights, start=1)
    )
    return Ring(RingSpec(1, POWER, REPLICAS, nodes, strategy))


def _slots(ring: Ring, depth: int = REPLICAS) -> Counter[str]:
    """Per node id, how many partitions hold it among their first `depth` primaries."""
    return Counter(
        node.id for partition in range(PARTITIONS) for node in ring.primaries(partition)[:depth]
    )


def _movement(old: Ring, new: Ring) -> tuple[int, int, list[set[str]]]:
    """Replicas moved, the largest change of one replica set, and the nodes that gained."""
    moved, worst, gained = 0, 0, []
    for partition in range(PARTITIONS):
        before = {node.id for node in old.primaries(partition)}
        after = {node.id for node in new.primaries(partition)}
        moved += len(before - after)
        worst = max(worst, len(before - after))
        gained.append(after - before)
    return moved, worst, gained


def _sampling_share(weights: dict[str, float], depth: int) -> dict[str, float]:
    """Chance each node is among the first `depth` of a weighted draw without replacement.

    That is what "first N distinct nodes of a weighted order" yields, so a weight-2 node's
    replica share is less than twice a weight-1 node's: it cannot hold two replicas.
    """
    share = dict.fromkeys(weights, 0.0)
    for prefix in itertools.permutations(weights, depth):
        chance, left = 1.0, sum(weights.values())
        for node_id in prefix:
            chance *= weights[node_id] / left
            left -= weights[node_id]
        for node_id in prefix:
            share[node_id] += chance
    return share


def _balance(strategy: str) -> float:
    counts = _slots(_ring(strategy, (1.0,) * 5))
    ideal = REPLICAS * PARTITIONS / 5
    assert len(counts) == 5
    for node_id, count in counts.items():
        assert abs(count - ideal) <= 0.10 * ideal, (strategy, node_id, count, ideal)
    return max(counts.values()) / min(counts.values())


def _add_sixth(strategy: str, weight: float = 1.0) -> int:
    old, new = _ring(strategy, (1.0,) * 5), _ring(strategy, (1.0,) * 5 + (weight,))
    moved, worst, gained = _movement(old, new)
    assert worst <= 1
    assert all(ids <= {"n6"} for ids in gained), "replicas moved between old nodes"
    # The new node should take its weighted share of replica slots, and nothing more.
    expected = PARTITIONS * _sampling_share(_weights(new), REPLICAS)["n6"]
    assert abs(moved - expected) <= 0.25 * expected, (strategy, weight, moved, expected)
    return moved


def _weights(ring: Ring) -> dict[str, float]:
    return {node.id: node.weight for node in ring.nodes}


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_equal_nodes_hold_equal_shares(strategy: str) -> None:
    _balance(strategy)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_adding_a_node_moves_only_its_share(strategy: str) -> None:
    moved = _add_sixth(strategy)
    ideal = REPLICAS * PARTITIONS / 6
    assert abs(moved - ideal) <= 0.25 * ideal


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("weight", [0.5, 2.0])
def test_adding_a_weighted_node_moves_nothing_between_old_nodes(
    strategy: str, weight: float
) -> None:
    _add_sixth(strategy, weight)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_changing_a_weight_moves_only_that_nodes_replicas(strategy: str) -> None:
    old = _ring(strategy, (1.0,) * 5)
    new = _ring(strategy, (2.0,) + (1.0,) * 4)
    changed = 0
    for partition in range(PARTITIONS):
        before = {node.id for node in old.primaries(partition)}
        after = {node.id for node in new.primaries(partition)}
        if before != after:
            changed += 1
            assert before ^ after >= {"n1"} and len(before ^ after) == 2
    assert changed > 0


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_weight_two_node_gets_twice_the_first_replicas(strategy: str) -> None:
    first = _slots(_ring(strategy, (2.0,) + (1.0,) * 4), depth=1)
    light = sum(first[f"n{i}"] for i in range(2, 6)) / 4
    assert 1.7 <= first["n1"] / light <= 2.3


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("depth", [1, REPLICAS])
def test_shares_follow_weights(strategy: str, depth: int) -> None:
    ring = _ring(strategy, (1.0, 1.0, 2.0, 2.0, 3.0, 3.0))
    counts = _slots(ring, depth)
    # One draw per partition is noisier than three, hence the wider bound for depth 1.
    tolerance = 0.15 if depth == 1 else 0.10
    for node_id, share in _sampling_share(_weights(ring), depth).items():
        expected = share * PARTITIONS
        assert abs(counts[node_id] - expected) <= tolerance * expected, (node_id, counts)


def test_compare_strategies() -> None:
    """Print balance and movement side by side (run with -s); both must meet the bounds."""
    ideal_move = REPLICAS * PARTITIONS // 6
    print(f"\n5 equal nodes, P={POWER}, N={REPLICAS}; add n6 (ideal move {ideal_move})")
    for strategy in STRATEGIES:
        counts = _slots(_ring(strategy, (1.0,) * 5))
        print(
            f"{strategy:>10}: max/min share {_balance(strategy):.3f} "
            f"(slots {min(counts.values())}..{max(counts.values())}), "
            f"moved {_add_sixth(strategy)} replicas"
        )
