"""shardgate.versions: strictly increasing 20-digit versions whose string order is time order."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from shardgate.versions import (
    VERSION_DIGITS,
    VersionClock,
    format_version,
    is_version,
    version_to_timestamp,
)


def fake_ns(monkeypatch: pytest.MonkeyPatch, values: list[int]) -> None:
    feed: Iterator[int] = iter(values)
    monkeypatch.setattr("shardgate.versions.time.time_ns", lambda: next(feed))


def test_versions_are_strictly_increasing_in_real_time() -> None:
    clock = VersionClock()
    made = [clock.next() for _ in range(10_000)]
    assert len(set(made)) == len(made)
    assert made == sorted(made)
    assert all(is_version(v) for v in made)


def test_frozen_clock_still_gives_increasing_versions(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_ns(monkeypatch, [5_000] * 4)
    clock = VersionClock()
    assert [clock.next() for _ in range(4)] == [
        format_version(n) for n in (5_000, 5_001, 5_002, 5_003)
    ]


def test_clock_going_backwards_never_repeats(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_ns(monkeypatch, [9_000, 100, 9_000, 12_000])
    clock = VersionClock()
    made = [int(clock.next()) for _ in range(4)]
    assert made == [9_000, 9_001, 9_002, 12_000]


def test_two_clocks_follow_the_wall_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_ns(monkeypatch, [1_000, 2_000])
    first, second = VersionClock(), VersionClock()
    assert first.next() < second.next()


@pytest.mark.parametrize(
    ("earlier", "later"),
    [(9, 10), (999, 1_000), (1_699_999_999_999_999_999, 1_700_000_000_000_000_000), (0, 1)],
)
def test_string_order_is_time_order(earlier: int, later: int) -> None:
    a, b = format_version(earlier), format_version(later)
    assert len(a) == len(b) == VERSION_DIGITS
    assert a < b


def test_version_round_trips_to_seconds() -> None:
    version = format_version(1_700_000_000_250_000_000)
    assert version == "01700000000250000000"
    assert version_to_timestamp(version) == pytest.approx(1_700_000_000.25)


@pytest.mark.parametrize(
    "text", ["", "1" * 19, "1" * 21, "0170000000025000000x", "-1700000000250000000", " " + "1" * 19]
)
def test_is_version_rejects_malformed(text: str) -> None:
    assert not is_version(text)


@pytest.mark.parametrize("digit", ["\u0661", "\u00b2", "\uff11"])
def test_is_version_rejects_non_ascii_digits(digit: str) -> None:
    assert not is_version(digit * VERSION_DIGITS)
