"""Retry delays: exponential in the attempt number, capped, with full jitter so that jobs
failing together (an S3 outage) do not come back together."""

from __future__ import annotations

import random


def backoff_delay(attempt: int, base: float, cap: float, rng: random.Random) -> float:
    """Seconds to wait after failed attempt number `attempt` (1 for the first)."""
    ceiling = min(cap, base * 2 ** min(attempt - 1, 62))
    return rng.uniform(0.0, ceiling)
