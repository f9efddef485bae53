"""What every target offers the benchmark: start and stop (as a context manager), object URLs
and request headers, and the server processes whose memory is watched."""

from __future__ import annotations

import abc
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Self

from bench.client import PHASES


class Target(abc.ABC):
    name: str  # short id used in results: "shardgate", "seaweedfs", "memory", ...
    label: str  # what the report calls it
    phases: tuple[str, ...] = PHASES  # what the load client runs, in order

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir

    @abc.abstractmethod
    def start(self) -> None:
        """Start every process and return once the target serves PUT and GET."""

    @abc.abstractmethod
    def stop(self) -> None:
        """Stop every process this target started; safe to call twice or after a failed start."""

    @abc.abstractmethod
    def object_url(self, key: str) -> str: ...

    @property
    def headers(self) -> Mapping[str, str]:
        return {}

    @abc.abstractmethod
    def processes(self) -> dict[str, int]:
        """Server process name -> pid, for peak-RSS sampling."""

    def describe(self) -> str:
        """One line for the report: version and how it was configured."""
        return self.label

    def __enter__(self) -> Self:
        self.workdir.mkdir(parents=True, exist_ok=True)
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
