"""shardgate.internal_api: wire paths, key encoding for headers, and user-metadata headers."""

from __future__ import annotations

import pytest
from multidict import CIMultiDict

from shardgate.internal_api import (
    META_PREFIX,
    PUBLIC_META_PREFIX,
    decode_key,
    encode_key,
    meta_from_headers,
    meta_headers,
    object_path,
    partition_path,
    version_path,
)

KEYS = [
    "plain.txt",
    "dir/sub dir/file name.txt",
    "100% done",
    "%41 is not A",
    "ünïcødé/日本語/файл.bin",
    "emoji 🎉/🚀",
    "a+b=c&d?e#f",
    "trailing space ",
    "quote\"and'apos",
]


@pytest.mark.parametrize("key", KEYS)
def test_key_round_trips(key: str) -> None:
    assert decode_key(encode_key(key)) == key


@pytest.mark.parametrize("key", KEYS)
def test_encoded_key_is_header_safe(key: str) -> None:
    encoded = encode_key(key)
    assert encoded.isascii()
    assert not any(ch in encoded for ch in " /\"'\t")
    assert all(ch.isalnum() or ch in "%-._~" for ch in encoded)


def test_percent_and_slash_are_escaped() -> None:
    assert encode_key("a/b%c d") == "a%2Fb%25c%20d"


def test_invalid_utf8_escape_is_refused() -> None:
    with pytest.raises(UnicodeDecodeError):
        decode_key("%FF%FE")


def test_paths() -> None:
    assert object_path(7, "abc") == "/internal/v1/objects/7/abc"
    assert version_path(7, "abc", "0" * 20) == f"/internal/v1/objects/7/abc/versions/{'0' * 20}"
    assert partition_path(4095) == "/internal/v1/partitions/4095"


def test_meta_headers_carry_the_prefix() -> None:
    headers = meta_headers({"Color": "red", "owner": "ann"}, META_PREFIX)
    assert headers == {"X-Shardgate-Meta-Color": "red", "X-Shardgate-Meta-owner": "ann"}


def test_meta_from_headers_lowercases_and_ignores_others() -> None:
    headers = CIMultiDict(
        {
            "x-shardgate-meta-Color": "red",
            "X-SHARDGATE-META-OWNER": "ann",
            "X-Meta-Public": "no",
            "Content-Type": "text/plain",
        }
    )
    assert meta_from_headers(headers, META_PREFIX) == {"color": "red", "owner": "ann"}
    assert meta_from_headers(headers, PUBLIC_META_PREFIX) == {"public": "no"}


def test_meta_round_trip_keeps_values() -> None:
    meta = {"camera": "Nikon D850", "empty": "", "x-y": "1"}
    assert meta_from_headers(meta_headers(meta, META_PREFIX), META_PREFIX) == meta
