"""Upload tokens: `base64url(payload) "." base64url(HMAC-SHA256(secret[kid], payload))`.

The gateway issues them; nodes only verify. Payload claims bind one node, bucket, key, method
and upload id, with expiry and limits. Two or more key ids may be valid at once for rotation.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from shardgate.errors import ShardgateError


class TokenRejected(ShardgateError):
    """The token fails one check; `reason` names which (never the secret)."""

    status = 403
    code = "InvalidToken"

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message, reason=reason)
        self.reason = reason


@dataclass(frozen=True)
class Claims:
    kid: str
    node: str
    bucket: str
    key: str
    method: str  # PUT, POST (browser form) or GET
    upload_id: str
    expires: int  # unix seconds; checked when the request starts
    partition: int
    max_size: int | None = None
    size: int | None = None  # the exact size, when the client stated one
    content_types: tuple[str, ...] = ()  # empty: any
    sha256: str | None = None
    origins: tuple[str, ...] = ()  # browser origins the bucket allows (for CORS on the node)
    min_version: str = ""  # GET: serve nothing older than the catalog's version
    part: int | None = None  # multipart part number
    commit_by: int = 0  # unix seconds after which the gateway commits no more; then sweepable
    extra: Mapping[str, Any] = field(default_factory=dict)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    """Strict: only the canonical encoding decodes, so one token has exactly one spelling."""
    data = base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
    if _b64(data) != text:
        raise ValueError("not the canonical base64url encoding")
    return data


def issue(claims: Claims, secret: bytes) -> str:
    payload = json.dumps(asdict(claims), separators=(",", ":"), sort_keys=True).encode()
    signature = hmac.new(secret, payload, hashlib.sha256).digest()
    return f"{_b64(payload)}.{_b64(signature)}"


def verify(token: str, secrets: Mapping[str, bytes], *, now: float | None = None) -> Claims:
    """The token's claims, if a current key signed it and it has not expired."""
    try:
        payload_text, signature_text = token.split(".")
        payload, signature = _unb64(payload_text), _unb64(signature_text)
        data = json.loads(payload)
        kid = data["kid"]
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise TokenRejected("malformed", "the token is not one this cluster issues") from None
    secret = secrets.get(kid) if isinstance(kid, str) else None
    if secret is None:
        raise TokenRejected("kid", "the token was signed with a key id that is no longer accepted")
    expected = hmac.new(secret, payload, hashlib.sha256).digest()
    if not hmac.compare_digest(expected, signature):
        raise TokenRejected("signature", "the token's signature does not match")
    try:
        tuples = {name: tuple(data.get(name, ())) for name in ("content_types", "origins")}
        claims = Claims(**{**data, **tuples})
    except TypeError:
        raise TokenRejected("malformed", "the token's claims are not understood") from None
    if claims.expires < (time.time() if now is None else now):
        raise TokenRejected("expired", "the token has expired")
    return claims


def parse_keys(text: str) -> dict[str, bytes]:
    """`kid=secret,kid=secret` (the form SHARDGATE_TOKEN_KEYS takes) as a mapping."""
    keys: dict[str, bytes] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        kid, sep, secret = item.partition("=")
        if not sep or not kid or not secret:
            raise ValueError("token keys are written kid=secret,kid=secret")
        keys[kid] = secret.encode()
    return keys


def derived_key(cluster_secret: bytes) -> dict[str, bytes]:
    """Without configured token keys, one key id derived from the cluster secret."""
    digest = hmac.new(cluster_secret, b"shardgate upload tokens", hashlib.sha256).hexdigest()
    return {"k0": digest.encode()}
