"""Which nodes are up, from a background probe and from what requests just saw.

A node that refused a connection is avoided for a back-off period instead of being tried
by every request; unprobed nodes count as up so that a fresh gateway can serve at once.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from gateway.nodes import NodeClient, NodeError, NodeStatus
from ring import Node

log = logging.getLogger(__name__)


@dataclass
class NodeState:
    up: bool = True
    down_until: float = 0.0
    last_error: str = ""
    status: NodeStatus | None = None


class NodeHealth:
    def __init__(self, client: NodeClient, *, interval: float, down_backoff: float) -> None:
        self._client = client
        self._interval = interval
        self._backoff = down_backoff
        self._states: dict[str, NodeState] = {}

    def state(self, node_id: str) -> NodeState:
        return self._states.setdefault(node_id, NodeState())

    def is_up(self, node_id: str) -> bool:
        state = self.state(node_id)
        return state.up or time.monotonic() >= state.down_until

    def mark_down(self, node_id: str, reason: str) -> None:
        state = self.state(node_id)
        if state.up:
            log.warning("node %s marked down: %s", node_id, reason)
        state.up = False
        state.down_until = time.monotonic() + self._backoff
        state.last_error = reason

    def mark_up(self, node_id: str, status: NodeStatus | None = None) -> None:
        state = self.state(node_id)
        if not state.up:
            log.info("node %s is back up", node_id)
        state.up = True
        state.last_error = ""
        if status is not None:
            state.status = status

    def up_count(self, nodes: tuple[Node, ...]) -> int:
        return sum(self.is_up(node.id) for node in nodes)

    async def probe(self, node: Node) -> None:
        try:
            self.mark_up(node.id, await self._client.status(node))
        except NodeError as exc:
            self.mark_down(node.id, str(exc))
