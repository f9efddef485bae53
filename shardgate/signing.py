"""HMAC signatures on internal requests: the cluster secret signs `METHOD\\npath?query\\nts`.

Bodies are not signed so that they can stream; the path names the object's hash, and nodes
check that the bucket and key they are told hash to it.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping

DATE_HEADER = "X-Shardgate-Date"
SIGNATURE_HEADER = "X-Shardgate-Signature"


class SignatureError(Exception):
    """The request is unsigned, stale or does not match its signature."""


def _digest(secret: bytes, method: str, path_qs: str, timestamp: str) -> str:
    canonical = "\n".join((method.upper(), path_qs, timestamp)).encode()
    return hmac.new(secret, canonical, hashlib.sha256).hexdigest()


def sign_request(
    secret: bytes, method: str, path_qs: str, now: float | None = None
) -> dict[str, str]:
    """Headers that authenticate one request to a node."""
    timestamp = str(int(time.time() if now is None else now))
    return {
        DATE_HEADER: timestamp,
        SIGNATURE_HEADER: _digest(secret, method, path_qs, timestamp),
    }


def verify_request(
    secret: bytes,
    method: str,
    path_qs: str,
    headers: Mapping[str, str],
    *,
    max_skew: float,
    now: float | None = None,
) -> None:
    """Raise SignatureError unless the headers sign this request within max_skew seconds."""
    timestamp = headers.get(DATE_HEADER)
    signature = headers.get(SIGNATURE_HEADER)
    if not timestamp or not signature:
        raise SignatureError("request is not signed")
    try:
        signed_at = int(timestamp)
    except ValueError:
        raise SignatureError("malformed signature timestamp") from None
    current = time.time() if now is None else now
    if abs(current - signed_at) > max_skew:
        raise SignatureError("signature timestamp outside the allowed clock skew")
    expected = _digest(secret, method, path_qs, timestamp)
    if not signature.isascii() or not hmac.compare_digest(expected, signature):
        raise SignatureError("signature does not match")
