"""Map an object's identity (`bucket/key`) to its hash and partition.

Both functions are part of the on-disk format: every stored object is found through them,
so their output must never change.
"""

import hashlib
import string

from ring.model import MAX_PARTITION_POWER, RingError

_HASH_BITS = 128
_HEX_DIGITS = frozenset(string.hexdigits)


def object_hash(bucket: str, key: str) -> str:
    """Return the md5 hex digest of `bucket/key` encoded as UTF-8."""
    return hashlib.md5(f"{bucket}/{key}".encode(), usedforsecurity=False).hexdigest()


def partition_of(obj_hash: str, partition_power: int) -> int:
    """Return the partition of `obj_hash`: its top `partition_power` bits."""
    if not 1 <= partition_power <= MAX_PARTITION_POWER:
        raise RingError(
            f"partition_power must be between 1 and {MAX_PARTITION_POWER}, got {partition_power}"
        )
    # int(..., 16) alone would also accept "0x", "_" and a sign, hence the digit check.
    if len(obj_hash) != _HASH_BITS // 4 or not _HEX_DIGITS.issuperset(obj_hash):
        raise RingError(f"object hash must be 32 hex digits, got {obj_hash!r}")
    return int(obj_hash, 16) >> (_HASH_BITS - partition_power)
