"""Background jobs on a timer, as aiohttp cleanup contexts: started with the app, cancelled
with it. Both services run several (sweeps, replication, repairs, expiry)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web

Job = Callable[[web.Application], Awaitable[None]]


def every(
    interval_of: Callable[[web.Application], float], job: Job, *, immediately: bool = False
) -> Callable[[web.Application], AsyncIterator[None]]:
    """A cleanup context running `job` every `interval_of(app)` seconds (never, if 0), and
    `immediately` also once as the app starts (in the background, never delaying start-up); the
    job handles its own errors, since one it lets escape ends the timer."""

    async def context(app: web.Application) -> AsyncIterator[None]:
        interval = interval_of(app)
        task: asyncio.Task[None] | None = None
        if interval > 0:

            async def forever() -> None:
                if immediately:
                    await job(app)
                while True:
                    await asyncio.sleep(interval)
                    await job(app)

            task = asyncio.create_task(forever())
        yield
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    return context
