"""cloud_sync.backoff: exponential ceilings, capped, with full jitter."""

from __future__ import annotations

import random

from cloud_sync import backoff_delay


def test_delays_stay_under_an_exponential_ceiling_and_the_cap() -> None:
    rng = random.Random(1)
    for attempt, ceiling in [(1, 1.0), (2, 2.0), (3, 4.0), (6, 30.0), (500, 30.0)]:
        delays = [backoff_delay(attempt, 1.0, 30.0, rng) for _ in range(200)]
        assert all(0.0 <= d <= ceiling for d in delays)
        assert max(delays) > ceiling * 0.8  # jitter spreads over the whole range


def test_jitter_spreads_jobs_that_failed_together() -> None:
    rng = random.Random(2)
    delays = {round(backoff_delay(4, 1.0, 300.0, rng), 3) for _ in range(50)}
    assert len(delays) > 40
