"""gateway.fanout.fan_out: concurrent ops, explicit quorum, timeouts and cancellation."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from gateway.fanout import fan_out


class Boom(Exception):
    pass


def echo(results: dict[str, object]) -> Callable[[str], Awaitable[object]]:
    """An op that returns results[target], or raises it when it is an exception."""

    async def op(target: str) -> object:
        await asyncio.sleep(0)
        value = results[target]
        if isinstance(value, BaseException):
            raise value
        return value

    return op


async def test_quorum_reached_keeps_target_order() -> None:
    result = await fan_out(["a", "b", "c"], echo({"a": 1, "b": 2, "c": 3}), need=2, timeout=5)
    assert result.reached
    assert result.ok == [("a", 1), ("b", 2), ("c", 3)]
    assert result.failed == []


async def test_quorum_not_reached_collects_each_exception() -> None:
    b_err, c_err = Boom("b down"), ValueError("c bad")
    result = await fan_out(
        ["a", "b", "c"], echo({"a": 1, "b": b_err, "c": c_err}), need=2, timeout=5
    )
    assert not result.reached
    assert result.ok == [("a", 1)]
    assert result.failed == [("b", b_err), ("c", c_err)]
    assert result.failed[0][1] is b_err


async def test_exactly_need_successes_is_enough() -> None:
    result = await fan_out(["a", "b", "c"], echo({"a": 1, "b": Boom(), "c": 3}), need=2, timeout=5)
    assert result.reached
    assert [t for t, _ in result.ok] == ["a", "c"]


async def test_timeout_cancels_stragglers_and_reports_timeout() -> None:
    never = asyncio.Event()
    cancelled: list[str] = []

    async def op(target: str) -> str:
        if target == "slow":
            try:
                await never.wait()
            except asyncio.CancelledError:
                cancelled.append(target)
                raise
        return target.upper()

    result = await fan_out(["fast", "slow", "quick"], op, need=2, timeout=0.05)
    assert result.reached
    assert result.ok == [("fast", "FAST"), ("quick", "QUICK")]
    assert [t for t, _ in result.failed] == ["slow"]
    assert isinstance(result.failed[0][1], TimeoutError)
    assert cancelled == ["slow"]


async def test_cancelling_the_caller_cancels_every_op() -> None:
    started = 0
    all_started = asyncio.Event()
    cancelled: set[str] = set()

    async def op(target: str) -> None:
        nonlocal started
        started += 1
        if started == 3:
            all_started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.add(target)
            raise

    caller = asyncio.create_task(fan_out(["a", "b", "c"], op, need=1, timeout=None))
    await all_started.wait()
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    assert cancelled == {"a", "b", "c"}


async def test_need_zero_is_always_reached() -> None:
    err = Boom()
    result = await fan_out(["a"], echo({"a": err}), need=0, timeout=5)
    assert result.reached
    assert result.failed == [("a", err)]


async def test_empty_targets_never_call_op() -> None:
    calls: list[str] = []

    async def op(target: str) -> None:
        calls.append(target)

    none: list[str] = []
    zero = await fan_out(none, op, need=0, timeout=5)
    one = await fan_out(none, op, need=1, timeout=5)
    assert zero.reached and zero.ok == [] and zero.failed == []
    assert not one.reached
    assert calls == []


async def test_ops_run_concurrently() -> None:
    arrived = 0
    everyone = asyncio.Event()

    async def op(target: str) -> str:
        nonlocal arrived
        arrived += 1
        if arrived == 3:
            everyone.set()
        await everyone.wait()  # deadlocks unless all three run at once
        return target

    result = await fan_out(["a", "b", "c"], op, need=3, timeout=5)
    assert result.reached and len(result.ok) == 3


async def test_op_cancelled_from_outside_is_a_failure_not_a_cancellation() -> None:
    tasks: dict[str, asyncio.Task[object]] = {}
    waiting = asyncio.Event()

    async def op(target: str) -> str:
        task = asyncio.current_task()
        assert task is not None
        tasks[target] = task
        if target == "stuck":
            waiting.set()
            await asyncio.Event().wait()
        return target

    async def canceller() -> None:
        await waiting.wait()
        tasks["stuck"].cancel()

    helper = asyncio.create_task(canceller())
    result = await fan_out(["ok1", "stuck", "ok2"], op, need=2, timeout=5)
    await helper
    assert result.reached
    assert [t for t, _ in result.ok] == ["ok1", "ok2"]
    assert [t for t, _ in result.failed] == ["stuck"]


async def test_early_returns_at_the_quorum_and_leaves_the_rest_running() -> None:
    gate = asyncio.Event()

    async def op(target: str) -> str:
        if target == "slow":
            await gate.wait()
        return target.upper()

    result = await fan_out(["fast", "slow", "quick"], op, need=2, timeout=None, early=True)
    assert result.ok == [("fast", "FAST"), ("quick", "QUICK")]
    assert [target for target, _ in result.running] == ["slow"]
    assert not result.running[0][1].done()
    gate.set()
    await result.finish()
    assert result.running == []
    assert result.ok[-1] == ("slow", "SLOW")


async def test_early_waits_for_all_while_failures_keep_the_quorum_open() -> None:
    gate = asyncio.Event()

    async def op(target: str) -> str:
        if target == "bad":
            raise Boom(target)
        if target == "slow":
            await gate.wait()
        return target

    waiting = asyncio.ensure_future(fan_out(["bad", "ok", "slow"], op, 2, None, early=True))
    await asyncio.sleep(0.02)
    assert not waiting.done(), "one success of two needed: it must wait for the slow one"
    gate.set()
    result = await waiting
    assert result.reached and result.running == []
    assert [target for target, _ in result.failed] == ["bad"]


async def test_early_still_times_out_when_the_quorum_never_comes() -> None:
    async def op(target: str) -> str:
        if target != "a":
            await asyncio.Event().wait()
        return target

    result = await fan_out(["a", "b", "c"], op, need=2, timeout=0.05, early=True)
    assert not result.reached and result.running == []
    assert [target for target, _ in result.failed] == ["b", "c"]
    assert all(isinstance(exc, TimeoutError) for _, exc in result.failed)
