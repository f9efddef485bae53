"""Placing a received direct upload on its replicas at commit, node to node under an explicit
quorum: each peer's early copy is published in place, a peer without one gets a copy from the
node that received the upload; and dropping an upload everywhere it is held."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from gateway.catalog import PendingRecord, Repair
from gateway.errors import QuorumNotReached
from gateway.fanout import fan_out
from gateway.node_health import NodeHealth
from gateway.nodes import NodeClient, NodeError, PutAck
from gateway.object_service import ObjectService
from gateway.replicated_write import ReplicatedWriter
from ring import Node
from shardgate.config import GatewayConfig

log = logging.getLogger(__name__)


class PendingPlacement:
    def __init__(
        self,
        config: GatewayConfig,
        objects: ObjectService,
        client: NodeClient,
        health: NodeHealth,
        writer: ReplicatedWriter,
    ) -> None:
        self._config = config
        self._objects = objects
        self._client = client
        self._health = health
        self._writer = writer

    async def place(
        self, pending: PendingRecord, source: Node, received: Mapping[str, Any]
    ) -> tuple[str, tuple[str, ...], list[Repair]]:
        """Publish the early copies `source` streamed to its peers, have it copy the upload to
        replicas without one (W in all), then publish it on `source`: the new version, the
        nodes holding it, and the repairs to record."""
        ring = self._objects.ring
        bucket, key = pending.bucket, pending.key
        addr = self._objects.address(bucket, key)
        version = self._objects.new_version()
        spares = [
            n for n in ring.handoffs(addr.partition) if n != source and self._health.is_up(n.id)
        ]
        targets, missed = [], []
        for primary in ring.primaries(addr.partition):
            if primary == source:
                continue
            if self._health.is_up(primary.id):
                targets.append((primary, primary))
            elif spares:
                targets.append((primary, spares.pop(0)))
            else:
                missed.append(primary.id)

        early = set(received.get("copies") or ())

        async def copy(target: tuple[Node, Node]) -> PutAck:
            node = target[1]
            if node.id in early:
                try:
                    return await self._client.publish_pending(
                        node, pending.upload_id, version, received
                    )
                except NodeError as exc:
                    log.warning(
                        "early copy of upload %s on %s not published, copying instead: %s",
                        pending.upload_id,
                        node.id,
                        exc,
                    )
            return await self._client.copy_pending(
                source, pending.upload_id, version, node, size=received["size"]
            )

        need = self._config.write_quorum
        result = await fan_out(targets, copy, need=max(need - 1, 0), timeout=None)
        # A version placed on peers but never recorded would outrank the catalog's.
        copied = [node for (_, node), ack in result.ok if not ack.superseded]
        if len(result.ok) + 1 < need:
            await self._writer.withdraw(addr, version, copied)
            raise QuorumNotReached(
                f"only {len(result.ok) + 1} replicas took the commit; {need} needed"
            )
        try:
            await self._client.publish_pending(source, pending.upload_id, version)
        except NodeError:
            await self._writer.withdraw(addr, version, copied)
            raise
        missed += [primary.id for (primary, _), _ in result.failed]
        repairs = [Repair(bucket, key, version, node_id, "missed") for node_id in missed]
        repairs += [
            Repair(bucket, key, version, primary.id, f"handoff:{node.id}")
            for (primary, node), _ in result.ok
            if primary != node
        ]
        held = (source.id, *(node.id for (_, node), _ in result.ok))
        return version, held, repairs

    async def drop(self, source: Node, upload_id: str, received: Mapping[str, Any]) -> None:
        """Drop an upload on the node that received it and on the peers holding early copies."""
        copies = set(received.get("copies") or ())
        holders = [source, *(n for n in self._objects.ring.nodes if n.id in copies)]
        await asyncio.gather(*(self.drop_on(node, upload_id) for node in holders))

    async def drop_on(self, node: Node, upload_id: str) -> None:
        try:
            await self._client.drop_pending(node, upload_id)
        except NodeError as exc:
            log.warning(
                "could not drop pending upload %s on %s (the sweeper will): %s",
                upload_id,
                node.id,
                exc,
            )
