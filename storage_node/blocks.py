"""Block checksums: a CRC per 1 MiB block of every stored version, kept in its metadata, so a
read checks each block before sending it and a flipped bit on disk is never served (the gateway
then resumes the download on another replica at that very byte). New versions use CRC-32C, which
google-crc32c computes with the CPU's crc32 instruction, several times faster than zlib's CRC-32;
versions written before carry zlib CRC-32s and are checked with those."""

from __future__ import annotations

import os
import zlib
from collections.abc import Callable, Sequence

import google_crc32c

from shardgate.block_sums import BLOCK_SIZE, CRC32C, blocks_digest
from storage_node.errors import ReplicaCorrupt
from storage_node.records import ObjectMeta, Vouched

CRC32 = "crc32"  # the first format

_SUM_OF: dict[str, Callable[[bytes], int]] = {CRC32C: google_crc32c.value, CRC32: zlib.crc32}


def checked_block(fd: int, index: int, size: int, sums: Sequence[int], kind: str) -> bytes:
    """Block `index` of an open file of `size` bytes, if it has its checksum in `sums`."""
    wanted = min(BLOCK_SIZE, size - index * BLOCK_SIZE)  # the version's trailer follows it
    block = os.pread(fd, wanted, index * BLOCK_SIZE)
    if len(block) != wanted:
        raise ReplicaCorrupt(f"the file ends inside block {index}; the copy is quarantined")
    if block_sum(block, kind) != sums[index]:
        raise ReplicaCorrupt(f"block {index} fails its checksum; the copy is quarantined")
    return block


def read_checked(fd: int, meta: ObjectMeta) -> bytes:
    """A version whole from its open file, every block checked (sync): for small versions."""
    return b"".join(
        checked_block(fd, index, meta.size, meta.blocks, meta.block_sum)
        for index in range(len(meta.blocks))
    )


def has_checksums(meta: ObjectMeta) -> bool:
    return meta.size > 0 and len(meta.blocks) == -(-meta.size // BLOCK_SIZE)


def vouch(meta: ObjectMeta) -> Vouched | None:
    """What a node copying `meta` can vouch for: versions with CRC-32C sums of every block."""
    if not has_checksums(meta) or meta.block_sum != CRC32C:
        return None
    return Vouched(meta.etag, blocks_digest(meta.blocks))


def block_sum(block: bytes, kind: str) -> int:
    return _SUM_OF[kind](block)
