"""Admission control: separate concurrency limits per request class, for the whole gateway and
per API key, that refuse at once instead of queueing, so one class cannot starve the others."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from gateway.errors import GatewayBusy, KeyBusy


class Bulkhead:
    def __init__(self, limits: Mapping[str, int], key_limits: Mapping[str, int]) -> None:
        self._limits = dict(limits)
        self._key_limits = dict(key_limits)
        self._active: Counter[str] = Counter()
        self._per_key: Counter[tuple[str, str]] = Counter()

    def in_use(self, kind: str) -> int:
        return self._active[kind]

    @contextmanager
    def enter(self, kind: str, key_id: str) -> Iterator[None]:
        """Hold one slot of `kind` for `key_id`, or raise GatewayBusy (503) / KeyBusy (429)."""
        if self._active[kind] >= self._limits[kind]:
            raise GatewayBusy(f"too many {kind} requests in progress; retry shortly")
        if self._per_key[(kind, key_id)] >= self._key_limits[kind]:
            raise KeyBusy(f"API key {key_id!r} has too many {kind} requests in progress")
        self._active[kind] += 1
        self._per_key[(kind, key_id)] += 1
        try:
            yield
        finally:
            self._active[kind] -= 1
            self._per_key[(kind, key_id)] -= 1
            if not self._per_key[(kind, key_id)]:
                del self._per_key[(kind, key_id)]
