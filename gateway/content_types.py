"""Declared content types checked against the file's first bytes, and bucket type policies.

A declared type with a known signature must match it; text types must be UTF-8 without NUL
bytes; types this table does not know pass (they cannot be checked), unless the bucket's
allow-list excludes them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from gateway.errors import UnsupportedMediaType
from shardgate.media import allowed, base_type

Check = Callable[[bytes], bool]


def _starts(*prefixes: bytes) -> Check:
    return lambda head: head.startswith(prefixes)


def _riff(kind: bytes) -> Check:
    return lambda head: head[:4] == b"RIFF" and head[8:12] == kind


def _mpeg_audio(head: bytes) -> bool:
    return head.startswith(b"ID3") or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0)


def _iso_media(head: bytes) -> bool:
    return head[4:8] == b"ftyp"


_ZIP = _starts(b"PK\x03\x04", b"PK\x05\x06")
_EBML = _starts(b"\x1a\x45\xdf\xa3")
_OGG = _starts(b"OggS")

SIGNATURES: dict[str, Check] = {
    "image/jpeg": _starts(b"\xff\xd8\xff"),
    "image/png": _starts(b"\x89PNG\r\n\x1a\n"),
    "image/gif": _starts(b"GIF87a", b"GIF89a"),
    "image/webp": _riff(b"WEBP"),
    "image/bmp": _starts(b"BM"),
    "image/tiff": _starts(b"II*\x00", b"MM\x00*"),
    "image/avif": _iso_media,
    "image/heic": _iso_media,
    "application/pdf": _starts(b"%PDF-"),
    "application/zip": _ZIP,
    "application/epub+zip": _ZIP,
    "application/java-archive": _ZIP,
    "application/gzip": _starts(b"\x1f\x8b"),
    "application/x-gzip": _starts(b"\x1f\x8b"),
    "application/ogg": _OGG,
    "video/mp4": _iso_media,
    "video/quicktime": _iso_media,
    "video/webm": _EBML,
    "video/x-matroska": _EBML,
    "video/ogg": _OGG,
    "audio/mp4": _iso_media,
    "audio/mpeg": _mpeg_audio,
    "audio/ogg": _OGG,
    "audio/flac": _starts(b"fLaC"),
    "audio/wav": _riff(b"WAVE"),
    "audio/x-wav": _riff(b"WAVE"),
    "audio/webm": _EBML,
}
_OFFICE_PREFIX = "application/vnd.openxmlformats-officedocument."
TEXT_TYPES = {
    "application/json",
    "application/xml",
    "application/javascript",
    "application/x-ndjson",
    "application/yaml",
    "image/svg+xml",
}


def _is_text(head: bytes) -> bool:
    if b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # The head may end inside a multi-byte character; only an error before that counts.
        return exc.start >= len(head) - 3 and exc.reason == "unexpected end of data"
    return True


def _signature(declared: str) -> Check | None:
    if declared.startswith(_OFFICE_PREFIX):
        return _ZIP
    if declared.startswith("text/") or declared in TEXT_TYPES:
        return _is_text
    return SIGNATURES.get(declared)


def check_type(content_type: str, allow: Sequence[str]) -> None:
    """Refuse, before any byte is read, a type the bucket does not allow."""
    declared = base_type(content_type)
    if not allowed(declared, allow):
        raise UnsupportedMediaType(f"content type {declared!r} is not allowed in this bucket")


def check_head(content_type: str, head: bytes) -> None:
    """Refuse a body whose first bytes contradict its declared type."""
    declared = base_type(content_type)
    signature = _signature(declared)
    if signature is not None and not signature(head):
        raise UnsupportedMediaType(f"the content does not look like {declared}")
