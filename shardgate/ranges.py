"""Single byte ranges as HTTP states them (RFC 9110 14.1.2), resolved against a known size."""

from __future__ import annotations

import re

_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


class Unsatisfiable(ValueError):
    """The range is malformed, or lies wholly outside the representation."""


def byte_range(header: str, size: int) -> tuple[int, int]:
    """[start, end) for `bytes=a-b`, `bytes=a-` or `bytes=-n`, clipped to `size`."""
    match = _RANGE.fullmatch(header.strip())
    if match is None or match[1] == match[2] == "":
        raise Unsatisfiable(f"unsupported Range {header!r}")
    if match[1] == "":
        start, end = max(size - int(match[2]), 0), size
    else:
        start = int(match[1])
        end = size if match[2] == "" else min(int(match[2]) + 1, size)
    if start >= size or start >= end:
        raise Unsatisfiable(f"range {header!r} is outside the {size}-byte object")
    return start, end
