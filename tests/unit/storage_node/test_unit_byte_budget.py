"""ByteBudget: a non-blocking count of bytes held at once."""

from __future__ import annotations

from storage_node.byte_budget import ByteBudget


def test_takes_up_to_its_limit_and_refuses_past_it() -> None:
    budget = ByteBudget(10)
    assert budget.take(6) and budget.take(4)
    assert not budget.take(1)
    budget.give(6)
    assert budget.take(5) and not budget.take(2)
    assert budget.held == 9


def test_a_single_take_larger_than_the_limit_is_refused() -> None:
    assert not ByteBudget(10).take(11)
