"""gateway.names: bucket and key rules, checked before anything is written."""

from __future__ import annotations

import pytest

from gateway.errors import InvalidBucketName, InvalidKey
from gateway.names import MAX_KEY_BYTES, check_bucket, check_key


@pytest.mark.parametrize(
    "key",
    [
        "a",
        "dir/file.txt",
        "ünïcødé/日本語.bin",
        "emoji 🎉",
        "with spaces and %25 percent",
        ".hidden",
        "a..b",
        "..dots-inside",
        "x" * MAX_KEY_BYTES,
        "é" * (MAX_KEY_BYTES // 2),
    ],
)
def test_valid_keys_are_returned_unchanged(key: str) -> None:
    assert check_key(key) == key


@pytest.mark.parametrize(
    ("key", "bytes_"),
    [("", 0), ("x" * (MAX_KEY_BYTES + 1), 1025), ("é" * 513, 1026), ("🎉" * 257, 1028)],
)
def test_key_length_is_counted_in_utf8_bytes(key: str, bytes_: int) -> None:
    with pytest.raises(InvalidKey, match=f"got {bytes_}"):
        check_key(key)


@pytest.mark.parametrize("char", ["\x00", "\t", "\n", "\r", "\x1b", "\x1f", "\x7f"])
def test_control_characters_are_refused(char: str) -> None:
    with pytest.raises(InvalidKey, match="control"):
        check_key(f"a{char}b")


@pytest.mark.parametrize("key", ["/a", "a/", "a//b", ".", "..", "./a", "a/./b", "a/../b", "a/.."])
def test_empty_dot_and_dotdot_segments_are_refused(key: str) -> None:
    with pytest.raises(InvalidKey, match="segments"):
        check_key(key)


def test_lone_surrogate_is_not_utf8() -> None:
    with pytest.raises(InvalidKey):
        check_key("photo\ud800.jpg")


def test_invalid_key_error_shape() -> None:
    with pytest.raises(InvalidKey) as err:
        check_key("")
    assert err.value.status == 400
    assert err.value.body()["error"]["code"] == "InvalidObjectName"


@pytest.mark.parametrize(
    "name", ["abc", "my-bucket", "logs.2024.v2", "0x9", "a" * 63, "a-b.c-d", "123"]
)
def test_valid_bucket_names(name: str) -> None:
    assert check_bucket(name) == name


@pytest.mark.parametrize(
    "name",
    [
        "",
        "ab",
        "a" * 64,
        "MyBucket",
        "-abc",
        "abc-",
        ".abc",
        "abc.",
        "a..b",
        "under_score",
        "bücket",
        "abc\n",
        "sp ace",
        "a/b",
    ],
)
def test_invalid_bucket_names(name: str) -> None:
    with pytest.raises(InvalidBucketName) as err:
        check_bucket(name)
    assert err.value.status == 400
    assert err.value.code == "InvalidBucketName"
