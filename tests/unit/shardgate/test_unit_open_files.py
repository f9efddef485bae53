"""shardgate.open_files: a service started from a shell with a low soft limit on open files
takes the hard limit instead, in a real child process (the limit is per process)."""

from __future__ import annotations

import logging
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from shardgate import open_files

CHILD = (
    "import resource; from shardgate.open_files import raise_open_files_limit;"
    "print(raise_open_files_limit(), *resource.getrlimit(resource.RLIMIT_NOFILE))"
)


def limits_in_child(soft: int) -> tuple[int, int, int]:
    """What the child's call returned, then its soft and hard limits after it."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]

    def lowered() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

    out = subprocess.run(
        [sys.executable, "-c", CHILD],
        preexec_fn=lowered,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    returned, now_soft, now_hard = (int(value) for value in out)
    return returned, now_soft, now_hard


def test_a_low_soft_limit_is_raised_to_the_hard_one() -> None:
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard != resource.RLIM_INFINITY and hard <= 256:
        pytest.skip(f"the hard limit here is {hard}: nothing to raise to")
    expected = open_files.kernel_cap() if hard == resource.RLIM_INFINITY else hard
    assert limits_in_child(256) == (expected, expected, hard)


def test_a_soft_limit_at_the_hard_one_is_left_alone() -> None:
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard == resource.RLIM_INFINITY:
        pytest.skip("no finite hard limit to start at")
    assert limits_in_child(hard) == (hard, hard, hard)


def test_a_refused_raise_is_logged_and_changes_nothing(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def refuse(kind: int, limits: tuple[int, int]) -> None:
        raise ValueError("not allowed")

    monkeypatch.setattr(open_files.resource, "getrlimit", lambda kind: (256, 4096))
    monkeypatch.setattr(open_files.resource, "setrlimit", refuse)
    with caplog.at_level(logging.WARNING, logger=open_files.__name__):
        assert open_files.raise_open_files_limit() == 256
    assert "stays at 256, not 4096" in caplog.text


def test_an_unlimited_hard_limit_raises_the_soft_one_to_the_kernels_cap(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    nr_open = tmp_path / "nr_open"
    nr_open.write_text("65536\n")
    asked: list[tuple[int, int]] = []
    monkeypatch.setattr(open_files, "NR_OPEN", nr_open)
    monkeypatch.setattr(
        open_files.resource, "getrlimit", lambda kind: (1024, resource.RLIM_INFINITY)
    )
    monkeypatch.setattr(open_files.resource, "setrlimit", lambda kind, limits: asked.append(limits))
    assert open_files.raise_open_files_limit() == 65536
    assert asked == [(65536, resource.RLIM_INFINITY)]


def test_the_kernels_cap_falls_back_to_its_default_when_proc_does_not_say(tmp_path: Path) -> None:
    assert open_files.kernel_cap(tmp_path / "missing") == open_files.DEFAULT_NR_OPEN
    garbled = tmp_path / "garbled"
    garbled.write_text("many\n")
    assert open_files.kernel_cap(garbled) == open_files.DEFAULT_NR_OPEN
