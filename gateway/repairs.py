"""Draining the repair table: for every replica that missed a write (or a delete), ask a node
that holds that version, or a newer one, to push it there. The gateway carries no bytes; the
nodes' replicators would get there too, on their slower full passes."""

from __future__ import annotations

import logging
from collections.abc import Callable

from gateway.catalog import Catalog, Repair
from gateway.node_health import NodeHealth
from gateway.nodes import NodeClient, NodeError, ObjectAddress
from ring import Ring, RingError, object_hash, partition_of

log = logging.getLogger(__name__)


class RepairDrain:
    def __init__(
        self, ring: Callable[[], Ring], catalog: Catalog, client: NodeClient, health: NodeHealth
    ) -> None:
        self._ring_in_force = ring
        self._catalog = catalog
        self._client = client
        self._health = health

    async def drain_once(self, limit: int = 500) -> int:
        """Repair what can be repaired now (its node is up and a source holds the version);
        the number of repairs resolved."""
        resolved = [r for r in await self._catalog.pending_repairs(limit) if await self._repair(r)]
        if resolved:
            await self._catalog.resolve_repairs(resolved)
        return len(resolved)

    async def _repair(self, repair: Repair) -> bool:
        ring = self._ring_in_force()
        try:
            target = ring.node(repair.node_id)
        except RingError:
            return True  # the node left the ring: there is nothing to repair any more
        if not self._health.is_up(target.id):
            return False
        obj_hash = object_hash(repair.bucket, repair.key)
        addr = ObjectAddress(
            partition_of(obj_hash, ring.partition_power), obj_hash, repair.bucket, repair.key
        )
        sources = [node for node in ring.preference(addr.partition) if node.id != target.id]
        lacking = 0
        for source in sources:
            if not self._health.is_up(source.id):
                continue
            try:
                # The push is silent until the peer has it all: its size bounds the wait.
                size = await self._client.held_size(source, addr, repair.version)
                if size is None:
                    lacking += 1
                    continue
                status = await self._client.push(source, addr, repair.version, target, size=size)
            except NodeError as exc:
                lacking += exc.status == 404
                log.debug("repair of %s/%s from %s: %s", repair.bucket, repair.key, source.id, exc)
                continue
            if status in (200, 201, 409):  # stored, or the target had newer already
                return True
        # Every other node says it holds nothing that new (a withdrawn form file, a reclaimed
        # part): if the catalog does not want it either, there is nothing left to repair, ever.
        # A node believed down may hold it, so one that was not asked keeps the repair.
        return bool(sources) and lacking == len(sources) and await self._unwanted(repair)

    async def _unwanted(self, repair: Repair) -> bool:
        refs = [(repair.bucket, repair.key, repair.version)]
        if not await self._catalog.unwanted_replicas(refs):
            return False
        log.info(
            "repair of %s/%s %s dropped: no node holds it and nothing wants it",
            repair.bucket,
            repair.key,
            repair.version,
        )
        return True
