"""Bucket and key naming rules, checked before anything is written."""

from __future__ import annotations

import re

from gateway.errors import InvalidArgument, InvalidBucketName, InvalidKey

MAX_KEY_BYTES = 1024
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def check_bucket(name: str) -> str:
    """S3's rules, minus the ones about DNS: 3-63 lower-case letters, digits, dots and hyphens."""
    if not _BUCKET.fullmatch(name) or ".." in name:
        raise InvalidBucketName(
            f"bucket name {name!r} must be 3-63 characters of a-z, 0-9, '.' and '-', "
            "starting and ending with a letter or digit"
        )
    return name


_CONTENT_TYPE = re.compile(r"[A-Za-z0-9][\w.+-]*/[A-Za-z0-9][\w.+-]*(\s*;\s*[\w.+-]+=[\w.+\-\"]+)*")
_META_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,63}")
_META_VALUE = re.compile(r"[\x20-\x7e]{0,1024}")


def check_content_type(value: object) -> str:
    """A media type safe to send back as a header (no control characters, no header breaks)."""
    if not isinstance(value, str) or not _CONTENT_TYPE.fullmatch(value):
        raise InvalidArgument("content_type must be a media type such as 'image/png'")
    return value


def check_metadata(value: object) -> dict[str, str]:
    """User metadata that can travel as X-Meta-<name> headers: names are lower-cased."""
    if not isinstance(value, dict) or not all(
        isinstance(k, str)
        and _META_NAME.fullmatch(k)
        and isinstance(v, str)
        and _META_VALUE.fullmatch(v)
        for k, v in value.items()
    ):
        raise InvalidArgument(
            "metadata maps names of letters, digits and '-' to printable ASCII values"
        )
    return {k.lower(): v for k, v in value.items()}


def json_name(body: dict[str, object], field: str) -> str:
    """A string field of a JSON body (never another type converted to one)."""
    value = body.get(field)
    if not isinstance(value, str):
        raise InvalidArgument(f"{field} must be a string")
    return value


def check_key(key: str) -> str:
    """1..1024 UTF-8 bytes, no control characters, no empty, '.' or '..' segments."""
    try:
        size = len(key.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidKey("key must be valid UTF-8") from None
    if not 1 <= size <= MAX_KEY_BYTES:
        raise InvalidKey(f"key must be 1 to {MAX_KEY_BYTES} bytes of UTF-8, got {size}")
    if _CONTROL.search(key):
        raise InvalidKey("key must not contain control characters")
    if any(segment in ("", ".", "..") for segment in key.split("/")):
        raise InvalidKey("key must not contain empty, '.' or '..' path segments")
    return key
