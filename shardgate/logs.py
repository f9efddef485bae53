"""Logging set up once per process: plain text for people, JSON lines for log pipelines.

Every line logged while a request is served names its request id; access-log lines (see
shardgate.access_log) also carry their fields as JSON keys.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

from shardgate import request_id


class _RequestIdFilter(logging.Filter):
    """Stamps each record with the id of the request being served (access lines bring theirs)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", None):
            record.request_id = request_id.current() or ""
        return True


class _JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self._service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "service": self._service,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        rid = getattr(record, "request_id", "")
        if rid:
            entry["request_id"] = rid
        entry.update(getattr(record, "access", {}))
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry)


class _TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        rid = getattr(record, "request_id", "")
        return f"{line} rid={rid}" if rid else line


def setup_logging(level: str, *, json_lines: bool, name: str) -> None:
    """Send logs to stderr; stdout is kept for the start-up line that launchers read."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_RequestIdFilter())
    if json_lines:
        handler.setFormatter(_JsonFormatter(name))
    else:
        handler.setFormatter(
            _TextFormatter(f"%(asctime)s {name} %(levelname)s %(name)s: %(message)s")
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
