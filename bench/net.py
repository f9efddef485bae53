"""Loopback helpers: pick free ports ourselves, and wait for readiness by polling HTTP."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Callable

HOST = "127.0.0.1"


def http_status(url: str, method: str = "GET", data: bytes | None = None) -> int | None:
    """The status a request gets, or None when nothing answers."""
    request = urllib.request.Request(url, data=data, method=method)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            response.read()
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except (urllib.error.URLError, OSError):
        return None


def wait_until(
    what: str, ready: Callable[[], bool], timeout_s: float, alive: Callable[[], bool]
) -> None:
    """Poll `ready` until it holds; fail early if the process behind it has exited."""
    deadline = time.monotonic() + timeout_s
    delay = 0.05
    while time.monotonic() < deadline:
        if ready():
            return
        if not alive():
            raise RuntimeError(f"{what} exited before it was ready")
        time.sleep(delay)
        delay = min(delay * 1.5, 0.5)
    raise TimeoutError(f"{what} was not ready within {timeout_s:.0f}s")
