"""Content types as both services see them: allow-lists, and the headers that keep a download
from running as active content in the origin that serves it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from urllib.parse import quote

# Types a browser would render or run: served as attachments.
ACTIVE_TYPES = frozenset(
    {
        "text/html",
        "application/xhtml+xml",
        "image/svg+xml",
        "text/xml",
        "application/xml",
        "text/javascript",
        "application/javascript",
        "application/x-javascript",
        "text/ecmascript",
        "application/ecmascript",
    }
)


def base_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def allowed(content_type: str, patterns: Sequence[str]) -> bool:
    """Whether the type fits an allow-list of exact types and `major/*` wildcards (empty: all)."""
    if not patterns:
        return True
    declared = base_type(content_type)
    major = declared.split("/", 1)[0]
    return any(p.lower() in (declared, f"{major}/*", "*/*") for p in patterns)


def safety_headers(key: str, content_type: str) -> dict[str, str]:
    """nosniff always; active content as an attachment named after the key's last segment."""
    headers = {"X-Content-Type-Options": "nosniff"}
    if base_type(content_type) in ACTIVE_TYPES:
        name = quote(key.rsplit("/", 1)[-1], safe="")
        headers["Content-Disposition"] = f"attachment; filename*=UTF-8''{name}"
    return headers


def public_meta_headers(user_meta: Mapping[str, str]) -> dict[str, str]:
    return {f"X-Meta-{name}": value for name, value in user_meta.items()}
