"""Sweeps driven from the gateway: each node's own sweep, then the replicas it has held for
longer than its grace age, checked against the catalog; the ones nothing wants are discarded.

A catalog that suddenly wants almost nothing is more likely the wrong catalog than a sea of
debris, so past a share of unwanted replicas the sweep refuses unless forced.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from gateway.catalog import Catalog
from gateway.nodes import NodeClient, NodeError
from ring import Node
from shardgate.internal_api import SWEEP_PATH
from shardgate.sweep_report import SweepReport

log = logging.getLogger(__name__)
PAGE = 1000
SWEEP_TIMEOUT = 3600.0  # a node walks its whole disk in one sweep call
REFUSE_FRACTION = 0.5
REFUSE_MIN = 100


@dataclass
class NodeSweep:
    node: Node
    report: SweepReport
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"node": self.node.id, "url": self.node.url, "error": self.error} | (
            self.report.to_json()
        )


def totals(sweeps: Sequence[NodeSweep], dry_run: bool) -> SweepReport:
    total = SweepReport(dry_run)
    for sweep in sweeps:
        total.merge(sweep.report)
    return total


class SweepCoordinator:
    def __init__(self, client: NodeClient, catalog: Catalog) -> None:
        self._client = client
        self._catalog = catalog

    async def sweep(
        self, nodes: Sequence[Node], *, dry_run: bool, local: bool = True, force: bool = False
    ) -> list[NodeSweep]:
        """Sweep the nodes one after another (a sweep is disk-heavy; one at a time is kind)."""
        return [await self.sweep_node(n, dry_run=dry_run, local=local, force=force) for n in nodes]

    async def sweep_node(self, node: Node, *, dry_run: bool, local: bool, force: bool) -> NodeSweep:
        report = SweepReport(dry_run)
        try:
            if local:
                answer = await self._call(node, "POST", SWEEP_PATH, {"dry_run": dry_run})
                report.merge(SweepReport.from_json(answer))
            checked, unwanted = await self._unwanted(node)
            if unwanted and not force and _suspicious(checked, len(unwanted)):
                raise Refused(
                    f"{len(unwanted)} of {checked} replicas on node {node.id} are unknown to the "
                    "catalog; is this gateway using the right catalog? (force to sweep anyway)"
                )
            for start in range(0, len(unwanted), PAGE):
                body = {"dry_run": dry_run, "replicas": unwanted[start : start + PAGE]}
                answer = await self._call(node, "POST", SWEEP_PATH + "/discard", body)
                report.merge(SweepReport.from_json(answer))
        except (NodeError, Refused) as exc:
            log.warning("sweep of node %s stopped: %s", node.id, exc)
            return NodeSweep(node, report, str(exc))
        return NodeSweep(node, report)

    async def _unwanted(self, node: Node) -> tuple[int, list[dict[str, Any]]]:
        """How many replicas were old enough to check, and those the catalog does not want."""
        checked, unwanted, after = 0, [], -1
        while True:
            page = await self._call(
                node, "GET", f"{SWEEP_PATH}/candidates?after={after}&limit={PAGE}"
            )
            replicas = page["replicas"]
            checked += len(replicas)
            refs = [(r["bucket"], r["key"], r["version"]) for r in replicas]
            unwanted += [replicas[i] for i in await self._catalog.unwanted_replicas(refs)]
            if page["next"] is None:
                return checked, unwanted
            after = page["next"]

    async def _call(self, node: Node, method: str, path: str, body: Any = None) -> Any:
        return await self._client.call(node, method, path, body, within=SWEEP_TIMEOUT)


class Refused(Exception):
    """The sweep would remove too large a share of a node's replicas to be believed."""


def _suspicious(checked: int, unwanted: int) -> bool:
    return checked >= REFUSE_MIN and unwanted > checked * REFUSE_FRACTION
