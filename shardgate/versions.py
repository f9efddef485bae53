"""Object versions: zero-padded nanosecond timestamps, so string order is time order."""

from __future__ import annotations

import time

VERSION_DIGITS = 20


class VersionClock:
    """Hands out strictly increasing versions from the wall clock, even within one nanosecond."""

    def __init__(self) -> None:
        self._last = 0

    def next(self) -> str:
        now = max(time.time_ns(), self._last + 1)
        self._last = now
        return format_version(now)


def format_version(ns: int) -> str:
    return f"{ns:0{VERSION_DIGITS}d}"


def is_version(text: str) -> bool:
    return len(text) == VERSION_DIGITS and text.isascii() and text.isdigit()


def version_to_timestamp(version: str) -> float:
    """Seconds since the epoch at which the version was made."""
    return int(version) / 1e9
