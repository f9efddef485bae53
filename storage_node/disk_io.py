"""Small disk helpers shared by the stores: directory fsync, and a full disk as a 507."""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from storage_node.errors import InsufficientStorage

T = TypeVar("T")


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def storage_errors(func: Callable[..., T]) -> Callable[..., T]:
    """Turn a full disk into 507 rather than a 500 with a traceback."""

    def wrapper(*args: object) -> T:
        try:
            return func(*args)
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise InsufficientStorage("no space left on this node's disk") from exc
            raise

    return wrapper
