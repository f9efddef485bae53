"""shardgate.tokens: issue/verify round trips; every tampering is a TokenRejected naming the
check that failed; two key ids valid at once; the signature compared in constant time."""

from __future__ import annotations

import base64
import dataclasses
import hmac
import json
from typing import Any

import pytest

from shardgate.tokens import Claims, TokenRejected, derived_key, issue, parse_keys, verify

NOW = 1_700_000_000.0
KEYS = {"old": b"old-secret-0123456789", "new": b"new-secret-9876543210"}
CLAIMS = Claims(
    kid="new",
    node="n2",
    bucket="photos",
    key="2024/cat.png",
    method="PUT",
    upload_id="0123456789abcdef01234567",
    expires=int(NOW) + 900,
    partition=3982,
    max_size=10 * 1024 * 1024,
    size=1234,
    content_types=("image/png",),
    sha256="ab" * 32,
    origins=("https://app.example.com",),
)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def split(token: str) -> tuple[bytes, bytes]:
    payload, signature = token.split(".")
    return unb64(payload), unb64(signature)


def join(payload: bytes, signature: bytes) -> str:
    return f"{b64(payload)}.{b64(signature)}"


def signed(data: dict[str, Any], secret: bytes) -> str:
    """A token over an arbitrary payload, signed properly (to reach the checks after the MAC)."""
    payload = json.dumps(data, separators=(",", ":"), sort_keys=True).encode()
    return join(payload, hmac.new(secret, payload, "sha256").digest())


def rejected(token: str, keys: dict[str, bytes] = KEYS, now: float = NOW) -> str:
    with pytest.raises(TokenRejected) as info:
        verify(token, keys, now=now)
    assert info.value.status == 403
    assert info.value.code == "InvalidToken"
    return info.value.reason


def test_round_trip_keeps_every_claim() -> None:
    token = issue(CLAIMS, KEYS["new"])
    assert verify(token, KEYS, now=NOW) == CLAIMS


def test_token_is_base64url_payload_dot_signature() -> None:
    token = issue(CLAIMS, KEYS["new"])
    payload, signature = split(token)
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")
    assert json.loads(payload)["kid"] == "new"
    assert signature == hmac.new(KEYS["new"], payload, "sha256").digest()


def test_default_claims_round_trip() -> None:
    claims = Claims("k0", "n1", "b", "k", "GET", "u" * 24, int(NOW) + 1, 0)
    assert verify(issue(claims, b"s"), {"k0": b"s"}, now=NOW) == claims


def test_payload_byte_changed_is_a_signature_failure() -> None:
    payload, signature = split(issue(CLAIMS, KEYS["new"]))
    forged = payload.replace(b'"photos"', b'"photoz"')
    assert forged != payload and json.loads(forged)["bucket"] == "photoz"
    assert rejected(join(forged, signature)) == "signature"


@pytest.mark.parametrize("index", [0, 15, 31])
def test_signature_byte_changed_is_a_signature_failure(index: int) -> None:
    payload, signature = split(issue(CLAIMS, KEYS["new"]))
    flipped = bytearray(signature)
    flipped[index] ^= 0x01
    assert rejected(join(payload, bytes(flipped))) == "signature"


def test_signature_truncated_is_a_signature_failure() -> None:
    payload, signature = split(issue(CLAIMS, KEYS["new"]))
    assert rejected(join(payload, signature[:16])) == "signature"


def test_kid_swapped_to_another_live_key_is_a_signature_failure() -> None:
    """Signed with `new`'s secret but labelled `old`: checked against old's secret, and fails."""
    token = issue(dataclasses.replace(CLAIMS, kid="old"), KEYS["new"])
    assert rejected(token) == "signature"


def test_kid_swapped_in_a_signed_token_is_a_signature_failure() -> None:
    payload, signature = split(issue(CLAIMS, KEYS["new"]))
    swapped = payload.replace(b'"kid":"new"', b'"kid":"old"')
    assert swapped != payload
    assert rejected(join(swapped, signature)) == "signature"


@pytest.mark.parametrize("kid", ["retired", "", "NEW"])
def test_unknown_kid_is_refused_as_kid(kid: str) -> None:
    token = issue(dataclasses.replace(CLAIMS, kid=kid), b"whatever")
    assert rejected(token) == "kid"


@pytest.mark.parametrize("kid", [None, 7, ["new"], {"id": "new"}])
def test_kid_that_is_not_a_string_is_refused_as_kid(kid: object) -> None:
    data = {**dataclasses.asdict(CLAIMS), "kid": kid}
    assert rejected(signed(data, KEYS["new"])) == "kid"


def test_expired_token_is_refused_as_expired() -> None:
    token = issue(CLAIMS, KEYS["new"])
    assert rejected(token, now=CLAIMS.expires + 0.5) == "expired"
    # Up to and including the expiry second itself the token is still good.
    assert verify(token, KEYS, now=CLAIMS.expires) == CLAIMS


def test_expiry_defaults_to_the_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    token = issue(CLAIMS, KEYS["new"])
    monkeypatch.setattr("shardgate.tokens.time.time", lambda: CLAIMS.expires + 10.0)
    with pytest.raises(TokenRejected) as info:
        verify(token, KEYS)
    assert info.value.reason == "expired"


def test_forged_expiry_is_a_signature_failure_not_a_reprieve() -> None:
    payload, signature = split(issue(CLAIMS, KEYS["new"]))
    later = payload.replace(str(CLAIMS.expires).encode(), str(CLAIMS.expires + 10**6).encode())
    assert later != payload
    assert rejected(join(later, signature), now=CLAIMS.expires + 10) == "signature"


MALFORMED = {
    "empty": "",
    "no-dot": "no-dot-at-all",
    "three-parts": "a.b.c",
    "bad-base64": "a.",  # a lone base64 character is never valid
    "empty-payload": ".AAAA",
    "bad-padding": "e30.AAAAA",  # a signature of 5 characters
    "not-base64": "!!!!.AAAA",
    "truncated-json": "eyJ.AAAA",
}


@pytest.mark.parametrize("token", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_tokens_are_refused_as_malformed(token: str) -> None:
    assert rejected(token) == "malformed"


@pytest.mark.parametrize(
    "payload",
    [b"not json", b"\xff\xfe\x00", b"[]", b'"kid"', b"42", b"{}", b'{"node":"n1"}'],
    ids=["text", "binary", "list", "string", "number", "no-kid", "no-kid-object"],
)
def test_non_json_or_kidless_payloads_are_refused_as_malformed(payload: bytes) -> None:
    token = join(payload, hmac.new(KEYS["new"], payload, "sha256").digest())
    assert rejected(token) == "malformed"


def test_unknown_claims_in_a_signed_token_are_refused_as_malformed() -> None:
    data = {**dataclasses.asdict(CLAIMS), "admin": True}
    assert rejected(signed(data, KEYS["new"])) == "malformed"


def test_two_kids_are_valid_at_once() -> None:
    old = issue(dataclasses.replace(CLAIMS, kid="old"), KEYS["old"])
    new = issue(CLAIMS, KEYS["new"])
    assert verify(old, KEYS, now=NOW).kid == "old"
    assert verify(new, KEYS, now=NOW).kid == "new"
    # Retiring `old` leaves `new` tokens good and turns old ones into kid failures.
    assert verify(new, {"new": KEYS["new"]}, now=NOW) == CLAIMS
    assert rejected(old, {"new": KEYS["new"]}) == "kid"


def test_signature_is_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr("shardgate.tokens.hmac.compare_digest", spy)
    payload, signature = split(issue(CLAIMS, KEYS["new"]))
    verify(join(payload, signature), KEYS, now=NOW)
    assert calls == [(hmac.new(KEYS["new"], payload, "sha256").digest(), signature)]

    calls.clear()
    forged = bytes(32)
    assert rejected(join(payload, forged)) == "signature"
    assert len(calls) == 1 and forged in calls[0]


def test_rejection_never_carries_the_secret_or_the_signature() -> None:
    token = issue(CLAIMS, KEYS["new"])
    payload, signature = split(token)
    cases = {
        "signature": (join(payload, bytes(32)), KEYS, NOW),
        "kid": (token, {"old": KEYS["old"]}, NOW),
        "expired": (token, KEYS, CLAIMS.expires + 1.0),
        "malformed": (token + ".x", KEYS, NOW),
    }
    for reason, (bad, keys, now) in cases.items():
        with pytest.raises(TokenRejected) as info:
            verify(bad, keys, now=now)
        assert info.value.reason == reason
        text = json.dumps(info.value.body()) + str(info.value)
        assert info.value.body()["error"]["reason"] == reason
        for secret in KEYS.values():
            assert secret.decode() not in text
        assert token.split(".")[1] not in text
        assert signature.hex() not in text


@pytest.mark.parametrize("mangle", ["junk-suffix", "unused-bits"])
def test_only_the_canonical_encoding_verifies(mangle: str) -> None:
    token = issue(CLAIMS, KEYS["new"])
    payload, signature = token.split(".")
    if mangle == "junk-suffix":
        bad = f"{payload}.{signature}!!"
    else:
        # 32 signature bytes are 43 characters; the last one carries 2 unused low bits.
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
        last = alphabet.index(signature[-1])
        bad = f"{payload}.{signature[:-1]}{alphabet[last ^ 0b01]}"
    assert bad != token
    assert rejected(bad) in ("malformed", "signature")


def test_parse_keys_reads_the_environment_form() -> None:
    assert parse_keys("old=a1, new=b2,") == {"old": b"a1", "new": b"b2"}
    assert parse_keys("k=with=equals") == {"k": b"with=equals"}
    for bad in ("nokey", "=secret", "kid="):
        with pytest.raises(ValueError):
            parse_keys(bad)


def test_derived_key_is_stable_and_not_the_cluster_secret() -> None:
    keys = derived_key(b"cluster")
    assert list(keys) == ["k0"]
    assert keys == derived_key(b"cluster") != derived_key(b"other")
    assert b"cluster" not in keys["k0"]
