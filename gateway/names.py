"""Bucket and key naming rules, checked before anything is written."""

from __future__ import annotations

import re

from gateway.errors import InvalidBucketName, InvalidKey

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
