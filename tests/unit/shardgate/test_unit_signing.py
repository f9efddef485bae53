"""shardgate.signing: HMAC over method, path and timestamp; everything else is a SignatureError."""

from __future__ import annotations

import hmac

import pytest

from shardgate.signing import (
    DATE_HEADER,
    SIGNATURE_HEADER,
    SignatureError,
    sign_request,
    verify_request,
)

SECRET = b"cluster-secret"
NOW = 1_700_000_000.0
PATH = "/internal/v1/objects/12/0123abcd?x=1"


def verify(
    headers: dict[str, str],
    *,
    method: str = "PUT",
    path: str = PATH,
    secret: bytes = SECRET,
    now: float = NOW,
    skew: float = 300.0,
) -> None:
    verify_request(secret, method, path, headers, max_skew=skew, now=now)


def test_signed_request_verifies() -> None:
    headers = sign_request(SECRET, "PUT", PATH, now=NOW)
    assert set(headers) == {DATE_HEADER, SIGNATURE_HEADER}
    assert headers[DATE_HEADER] == str(int(NOW))
    assert len(headers[SIGNATURE_HEADER]) == 64
    verify(headers)


def test_method_case_does_not_matter() -> None:
    verify(sign_request(SECRET, "delete", PATH, now=NOW), method="DELETE")


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {DATE_HEADER: str(int(NOW))},
        {SIGNATURE_HEADER: "ab" * 32},
        {DATE_HEADER: "", SIGNATURE_HEADER: "x"},
    ],
)
def test_unsigned_request_is_refused(headers: dict[str, str]) -> None:
    with pytest.raises(SignatureError, match="not signed"):
        verify(headers)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", PATH),
        ("PUT", "/internal/v1/objects/12/0123abce?x=1"),
        ("PUT", "/internal/v1/objects/12/0123abcd?x=2"),
        ("PUT", "/internal/v1/objects/12/0123abcd"),
    ],
)
def test_tampered_method_or_path_is_refused(method: str, path: str) -> None:
    headers = sign_request(SECRET, "PUT", PATH, now=NOW)
    with pytest.raises(SignatureError, match="does not match"):
        verify(headers, method=method, path=path)


def test_wrong_secret_is_refused() -> None:
    headers = sign_request(b"other-secret", "PUT", PATH, now=NOW)
    with pytest.raises(SignatureError, match="does not match"):
        verify(headers)


def test_moved_timestamp_breaks_the_signature() -> None:
    headers = sign_request(SECRET, "PUT", PATH, now=NOW)
    headers[DATE_HEADER] = str(int(NOW) + 1)
    with pytest.raises(SignatureError, match="does not match"):
        verify(headers)


@pytest.mark.parametrize("offset", [-301.0, 301.0, 10_000.0])
def test_stale_or_future_timestamp_is_refused(offset: float) -> None:
    headers = sign_request(SECRET, "PUT", PATH, now=NOW + offset)
    with pytest.raises(SignatureError, match="clock skew"):
        verify(headers)


@pytest.mark.parametrize("offset", [-300.0, 0.0, 300.0])
def test_timestamp_within_skew_is_accepted(offset: float) -> None:
    verify(sign_request(SECRET, "PUT", PATH, now=NOW + offset))


def test_malformed_timestamp_is_refused() -> None:
    with pytest.raises(SignatureError, match="malformed"):
        verify({DATE_HEADER: "yesterday", SIGNATURE_HEADER: "ab" * 32})


def test_comparison_is_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[object, object]] = []
    real = hmac.compare_digest

    def recording(a: str, b: str) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr("shardgate.signing.hmac.compare_digest", recording)
    headers = sign_request(SECRET, "PUT", PATH, now=NOW)
    verify(headers)
    assert calls == [(headers[SIGNATURE_HEADER], headers[SIGNATURE_HEADER])]


def test_non_ascii_signature_is_a_signature_error() -> None:
    headers = sign_request(SECRET, "PUT", PATH, now=NOW)
    headers[SIGNATURE_HEADER] = "é" * 64
    with pytest.raises(SignatureError):
        verify(headers)
