"""fan_out: run one operation against several targets at once and say whether a quorum held.

It knows nothing of HTTP or nodes; writes, deletes and commits all go through it, with the
quorum they need stated by the caller.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


@dataclass
class FanOutResult(Generic[T, R]):
    need: int
    ok: list[tuple[T, R]] = field(default_factory=list)
    failed: list[tuple[T, BaseException]] = field(default_factory=list)
    running: list[tuple[T, asyncio.Future[R]]] = field(default_factory=list)  # left by `early`

    @property
    def reached(self) -> bool:
        return len(self.ok) >= self.need

    async def finish(self) -> None:
        """Wait for the targets left running, and file each under ok or failed."""
        if self.running:
            await asyncio.wait([task for _, task in self.running])
        self.collect()

    def collect(self) -> None:
        """File the targets left running that have ended since."""
        running, self.running = self.running, []
        for target, task in running:
            if task.done():
                self._file(target, task)
            else:
                self.running.append((target, task))

    def _file(self, target: T, task: asyncio.Future[R]) -> None:
        if task.cancelled():
            # Cancelled by someone other than our caller (a stalled stream is cut this way).
            self.failed.append((target, asyncio.CancelledError("cancelled")))
        elif (exc := task.exception()) is not None:
            self.failed.append((target, exc))
        else:
            self.ok.append((target, task.result()))


async def fan_out(
    targets: Sequence[T],
    op: Callable[[T], Awaitable[R]],
    need: int,
    timeout: float | None,  # noqa: ASYNC109 - the contract DESIGN.md names
    *,
    early: bool = False,
) -> FanOutResult[T, R]:
    """Run op on every target concurrently; wait for all of them, at most `timeout` seconds.

    Waiting for all rather than the first `need` keeps the replica list exact. With `early`, it
    returns once `need` have succeeded (at once for need 0) and leaves the rest in `running`,
    for the caller to see to, even at the timeout. Otherwise targets still running at the
    timeout are cancelled and reported as failed with TimeoutError.
    """
    result: FanOutResult[T, R] = FanOutResult(need=need)
    if not targets:
        return result
    tasks: dict[asyncio.Future[R], T] = {
        asyncio.ensure_future(op(target)): target for target in targets
    }
    loop = asyncio.get_running_loop()
    deadline = None if timeout is None else loop.time() + timeout
    pending: set[asyncio.Future[R]] = set(tasks)
    when = asyncio.FIRST_COMPLETED if early else asyncio.ALL_COMPLETED
    try:
        while pending and not (early and _succeeded(tasks) >= need):
            left = None if deadline is None else max(deadline - loop.time(), 0.0)
            _, pending = await asyncio.wait(pending, timeout=left, return_when=when)
            if deadline is not None and loop.time() >= deadline:
                break
    except asyncio.CancelledError:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
    if early and _succeeded(tasks) >= need:
        result.running = [(tasks[task], task) for task in tasks if task in pending]
    else:
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
    for task, target in tasks.items():
        if task not in pending:
            result._file(target, task)
        elif not result.running:
            result.failed.append((target, TimeoutError(f"no answer within {timeout}s")))
    return result


def _succeeded(tasks: Iterable[asyncio.Future[Any]]) -> int:
    return sum(task.done() and not task.cancelled() and task.exception() is None for task in tasks)
