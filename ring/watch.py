"""A ring file watched for changes: a process that places or replicates data picks up a new
epoch without a restart; a file that is missing or half-written keeps the last good ring."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from ring.model import RingError
from ring.placement import Ring
from ring.ringfile import load_ring_file

log = logging.getLogger(__name__)


class RingWatch:
    def __init__(self, path: Path) -> None:
        self._path = path
        self._stamp: tuple[int, int] | None = None
        self._ring: Ring | None = None

    def current(self) -> Ring | None:
        """The newest ring the file has held (checked by mtime and size), or None before one."""
        try:
            stat = os.stat(self._path)
        except FileNotFoundError:
            return self._ring
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp != self._stamp:
            try:
                ring = Ring(load_ring_file(self._path))
            except RingError as exc:
                log.warning(
                    "ring file %s not loaded, keeping epoch %s: %s",
                    self._path,
                    self._ring.epoch if self._ring else None,
                    exc,
                )
                return self._ring
            if self._ring is None or ring.epoch != self._ring.epoch:
                log.info("ring epoch %d loaded from %s", ring.epoch, self._path)
            self._ring, self._stamp = ring, stamp
        return self._ring
