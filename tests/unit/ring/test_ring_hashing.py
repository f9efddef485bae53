"""object_hash and partition_of are part of the on-disk format: pinned values catch a change."""

import pytest

from ring import RingError, object_hash, partition_of


@pytest.mark.parametrize(
    ("bucket", "key", "digest", "p12", "p20"),
    [
        ("photos", "cat.jpg", "e3968994c9392f35a7ac9e248417601b", 3641, 932200),
        ("b", "k", "9dde8d2e288b8c44bf88fcc3a05e684e", 2525, 646632),
        ("bucket", "dir/ü/key", "d4a4cb87f01bfc98718ebfb783044ed0", 3402, 870988),
    ],
)
def test_hash_and_partition_are_pinned(
    bucket: str, key: str, digest: str, p12: int, p20: int
) -> None:
    assert object_hash(bucket, key) == digest
    assert partition_of(digest, 12) == p12
    assert partition_of(digest, 20) == p20


def test_partition_is_the_top_bits() -> None:
    assert partition_of("f" * 32, 12) == 4095
    assert partition_of("0" * 32, 12) == 0
    assert partition_of("8" + "0" * 31, 1) == 1
    assert partition_of("7" + "f" * 31, 1) == 0


@pytest.mark.parametrize("power", [1, 8, 12, 20])
def test_partitions_stay_in_range(power: int) -> None:
    for i in range(2000):
        assert 0 <= partition_of(object_hash("b", f"key-{i}"), power) < 2**power


@pytest.mark.parametrize("bad", ["", "abc", "0x" + "0" * 30, "g" * 32, "-" + "1" * 31])
def test_malformed_hash_is_rejected(bad: str) -> None:
    with pytest.raises(RingError, match="32 hex digits"):
        partition_of(bad, 12)


@pytest.mark.parametrize("power", [0, 21])
def test_partition_power_out_of_range_is_rejected(power: int) -> None:
    with pytest.raises(RingError, match="partition_power"):
        partition_of("0" * 32, power)
