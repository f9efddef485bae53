"""shardgate.block_sums: the digest kept up block by block equals the digest of the kept sums."""

from __future__ import annotations

import os

import pytest

from shardgate.block_sums import BLOCK_SIZE, BlockSums, blocks_digest


@pytest.mark.parametrize("size", [0, 1, BLOCK_SIZE - 1, BLOCK_SIZE, 3 * BLOCK_SIZE + 17])
def test_running_digest_matches_the_digest_of_the_sums(size: int) -> None:
    data = os.urandom(size)
    kept, digest_only = BlockSums(), BlockSums(keep=False)
    for start in range(0, size, 300_000):  # pieces that straddle block edges
        kept.update(data[start : start + 300_000])
        digest_only.update(data[start : start + 300_000])
    assert len(kept.finish()) == -(-size // BLOCK_SIZE)
    assert kept.digest() == digest_only.digest() == blocks_digest(kept.finish())


def test_sums_not_kept_cannot_be_listed() -> None:
    sums = BlockSums(keep=False)
    sums.update(b"x" * 10)
    with pytest.raises(ValueError, match="not kept"):
        sums.finish()
