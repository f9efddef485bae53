"""fan_out: run one operation against several targets at once and say whether a quorum held.

It knows nothing of HTTP or nodes; writes, deletes and commits all go through it, with the
quorum they need stated by the caller.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


@dataclass
class FanOutResult(Generic[T, R]):
    need: int
    ok: list[tuple[T, R]] = field(default_factory=list)
    failed: list[tuple[T, BaseException]] = field(default_factory=list)

    @property
    def reached(self) -> bool:
        return len(self.ok) >= self.need


async def fan_out(
    targets: Sequence[T],
    op: Callable[[T], Awaitable[R]],
    need: int,
    timeout: float | None,  # noqa: ASYNC109 - the contract DESIGN.md names
) -> FanOutResult[T, R]:
    """Run op on every target concurrently; wait for all of them, at most `timeout` seconds.

    Waiting for all rather than the first `need` keeps the replica list exact; callers that
    stream to every target at once see them finish together anyway. Targets still running at
    the timeout are cancelled and reported as failed with TimeoutError.
    """
    result: FanOutResult[T, R] = FanOutResult(need=need)
    if not targets:
        return result
    tasks = {asyncio.ensure_future(op(target)): target for target in targets}
    try:
        _, pending = await asyncio.wait(tasks, timeout=timeout)
    except asyncio.CancelledError:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    for task, target in tasks.items():
        if task in pending:
            result.failed.append((target, TimeoutError(f"no answer within {timeout}s")))
        elif task.cancelled():
            # Cancelled by someone other than our caller (a stalled stream is cut this way).
            result.failed.append((target, asyncio.CancelledError("cancelled")))
        elif (exc := task.exception()) is not None:
            result.failed.append((target, exc))
        else:
            result.ok.append((target, task.result()))
    return result
