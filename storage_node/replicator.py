"""The replicator: per partition this node holds, make every primary hold at least what this
node holds, so that a node that was down gets what it missed and deletes reach it as tombstones.

Push-only, in the manner of Swift's object replicator: each node compares a digest of each
partition with each other primary's and, where they differ, pushes the versions and tombstones
the peer lacks or holds older. Since every node does the same, replicas converge on the newest
of everything (last writer wins). A node that is not a primary of a partition (a handoff, or
the old owner after a ring change) pushes everything to the primaries and drops its copy once
every primary holds that version or a newer one.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import time
from dataclasses import dataclass

import aiohttp

from ring import Node, Ring, RingWatch
from storage_node.disk import DiskStore
from storage_node.disk_io import fsync_dir
from storage_node.peers import PeerClient
from storage_node.records import ObjectMeta
from storage_node.replicator_metrics import ReplicatorMetrics

log = logging.getLogger(__name__)
DIGEST_BATCH = 1000
PeerErrors = (aiohttp.ClientError, TimeoutError, OSError, ValueError, KeyError)


EMPTY_DIGEST = hashlib.md5(b"", usedforsecurity=False).hexdigest()


def partition_digest(store: DiskStore, partition: int) -> str:
    """What replicas of a partition must agree on: each object's newest version and whether it
    is a tombstone. Read from file names alone (sync), so a pass over a node opens no file."""
    base = store.objects / str(partition)
    digest = hashlib.md5(usedforsecurity=False)
    try:
        hashes = sorted(os.listdir(base))
    except FileNotFoundError:
        return EMPTY_DIGEST
    for obj_hash in hashes:
        data, tombstones = store.versions_of(base / obj_hash)
        committed = data | tombstones
        if committed:
            newest = max(committed)
            digest.update(f"{obj_hash} {newest} {int(newest in tombstones)}\n".encode())
    return digest.hexdigest()


@dataclass
class PassReport:
    partitions: int = 0
    in_sync: int = 0
    pushed: int = 0
    tombstones: int = 0
    handoffs_dropped: int = 0
    handoffs_left: int = 0
    errors: int = 0


class Replicator:
    def __init__(
        self,
        store: DiskStore,
        node_id: str,
        rings: RingWatch,
        peers: PeerClient,
        metrics: ReplicatorMetrics | None = None,
        concurrency: int = 4,
    ) -> None:
        self._store = store
        self._me = node_id
        self._rings = rings
        self._peers = peers
        self._metrics = metrics
        self._concurrency = concurrency

    async def run_once(self) -> PassReport:
        """One pass over every partition held here; peers that cannot be reached wait a pass."""
        started = time.monotonic()
        report = PassReport()
        ring = await asyncio.get_running_loop().run_in_executor(None, self._rings.current)
        if ring is None:
            return report
        held = await asyncio.get_running_loop().run_in_executor(self._store.pool, self._held)
        # Only digests are kept for the whole node; a partition is listed again if it must sync,
        # so memory follows the partition, not the node.
        loop = asyncio.get_running_loop()
        digests = {}
        for partition in held:
            digest = await loop.run_in_executor(
                self._store.pool, partition_digest, self._store, partition
            )
            if digest != EMPTY_DIGEST:
                digests[partition] = digest
        remote = await self._remote_digests(ring, list(digests), report)
        gate = asyncio.Semaphore(self._concurrency)

        async def one(partition: int) -> None:
            async with gate:
                await self._sync_partition(ring, partition, digests[partition], remote, report)

        await asyncio.gather(*(one(p) for p in sorted(digests)))
        report.partitions = len(digests)
        if self._metrics is not None:
            self._metrics.record(report, time.monotonic() - started)
        return report

    async def restore(self, partition: int, obj_hash: str, version: str) -> bool:
        """Get a good copy of `version` (or newer) pushed here by another replica."""
        ring = await asyncio.get_running_loop().run_in_executor(None, self._rings.current)
        if ring is None or self._me not in {node.id for node in ring.nodes}:
            return False
        me = ring.node(self._me)
        for peer in ring.preference(partition):
            if peer.id == self._me:
                continue
            try:
                status = await self._peers.ask_push(peer.url, partition, obj_hash, version, me.url)
            except PeerErrors as exc:
                log.info("restore of %s from %s failed: %r", obj_hash, peer.id, exc)
                continue
            if status in (200, 201, 409):
                log.info("restored %s/%s version %s from %s", partition, obj_hash, version, peer.id)
                return True
        return False

    def _held(self) -> list[int]:
        return sorted(int(p.name) for p in self._store.objects.iterdir() if p.name.isdigit())

    def _targets(self, ring: Ring, partition: int) -> list[Node]:
        return [node for node in ring.primaries(partition) if node.id != self._me]

    async def _remote_digests(
        self, ring: Ring, partitions: list[int], report: PassReport
    ) -> dict[tuple[str, int], str]:
        wanted: dict[str, tuple[Node, list[int]]] = {}
        for partition in partitions:
            for node in self._targets(ring, partition):
                wanted.setdefault(node.id, (node, []))[1].append(partition)
        found: dict[tuple[str, int], str] = {}
        for node, asked in wanted.values():
            for start in range(0, len(asked), DIGEST_BATCH):
                batch = asked[start : start + DIGEST_BATCH]
                try:
                    answer = await self._peers.digests(node.url, batch)
                except PeerErrors as exc:
                    log.info("replicator: node %s unreachable this pass: %r", node.id, exc)
                    report.errors += 1
                    break
                found.update({(node.id, p): digest for p, digest in answer.items()})
        return found

    async def _sync_partition(
        self,
        ring: Ring,
        partition: int,
        mine: str,
        remote: dict[tuple[str, int], str],
        report: PassReport,
    ) -> None:
        targets = self._targets(ring, partition)
        handoff = len(targets) == len(ring.primaries(partition))
        if all(remote.get((t.id, partition)) == mine for t in targets) and not handoff:
            report.in_sync += 1
            return
        entries = await self._store.list_partition(partition)
        held_by_all = {obj_hash for obj_hash, _ in entries}
        for target in targets:
            if (target.id, partition) not in remote:
                held_by_all.clear()  # unreachable: nothing may be dropped on its word
                continue
            confirmed = await self._sync_with(target, partition, entries, report)
            held_by_all &= confirmed
        if handoff:
            await self._drop_handed_over(partition, entries, held_by_all, report)

    async def _sync_with(
        self,
        target: Node,
        partition: int,
        entries: list[tuple[str, ObjectMeta]],
        report: PassReport,
    ) -> set[str]:
        """Push what `target` lacks; the hashes it is known to hold at our version or newer."""
        try:
            theirs = await self._peers.listing(target.url, partition)
        except PeerErrors as exc:
            log.info("replicator: listing %d on %s failed: %r", partition, target.id, exc)
            report.errors += 1
            return set()
        confirmed = set()
        for obj_hash, meta in entries:
            held = theirs.get(obj_hash)
            has_it = held is not None and held[0] >= meta.version
            if has_it or await self._push(target, partition, obj_hash, meta, report):
                confirmed.add(obj_hash)
        return confirmed

    async def _push(
        self, target: Node, partition: int, obj_hash: str, meta: ObjectMeta, report: PassReport
    ) -> bool:
        try:
            if meta.tombstone:
                status, _ = await self._peers.push_tombstone(target.url, partition, obj_hash, meta)
            else:
                path = self._store.data_path(partition, obj_hash, meta.version)
                status, _ = await self._peers.push(target.url, partition, obj_hash, meta, path)
        except FileNotFoundError:
            return False  # replaced here since the listing; the next pass sends the new one
        except PeerErrors as exc:
            log.info("replicator: push of %s to %s failed: %r", obj_hash, target.id, exc)
            report.errors += 1
            return False
        if status in (200, 201):
            if meta.tombstone:
                report.tombstones += 1
            else:
                report.pushed += 1
            return True
        if status == 409:
            return True  # the peer holds something newer
        report.errors += 1
        log.warning("replicator: %s refused %s/%s: %d", target.id, partition, obj_hash, status)
        return False

    async def _drop_handed_over(
        self,
        partition: int,
        entries: list[tuple[str, ObjectMeta]],
        held_by_all: set[str],
        report: PassReport,
    ) -> None:
        for obj_hash, meta in entries:
            if obj_hash not in held_by_all:
                report.handoffs_left += 1
                continue
            dropped = await self._store.locked(
                obj_hash, self._drop_sync, partition, obj_hash, meta.version
            )
            report.handoffs_dropped += dropped
            report.handoffs_left += not dropped

    def _drop_sync(self, partition: int, obj_hash: str, version: str) -> bool:
        """Remove this node's copy if it is still exactly `version` (else a newer write came)."""
        target = self._store.object_dir(partition, obj_hash)
        newest = self._store.newest_sync(target)
        if newest is None or newest.version != version:
            return False
        (target / f"{version}.{'ts' if newest.tombstone else 'data'}").unlink(missing_ok=True)
        if self._store.fsync:
            fsync_dir(target)
        with contextlib.suppress(OSError):
            target.rmdir()
        return True
