"""What the deploy/ tests share: where the files are, the CLI's parser, and the metric names the
code really exports (collected from the gateway's and a node's own registries)."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable
from pathlib import Path

from aiohttp import web
from prometheus_client import CollectorRegistry

from ring import Node, RingSpec, save_ring_file
from shardgate.cli import build_parser
from shardgate.config import GatewayConfig, NodeConfig
from shardgate.web import REGISTRY_KEY

REPO = Path(__file__).resolve().parents[3]
DEPLOY = REPO / "deploy"

# Series Prometheus itself records for every target.
PROMETHEUS_OWN = frozenset({"up", "scrape_duration_seconds", "scrape_samples_scraped"})

_SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("", "_count", "_sum", "_created"),
    "info": ("_info",),
}


def sample_names(registry: CollectorRegistry) -> set[str]:
    """Every sample name a registry can expose, whether or not a labelled child exists yet."""
    names = set()
    for family in registry.collect():
        names |= {family.name + suffix for suffix in _SUFFIXES.get(family.type, ("",))}
    return names


def _unreachable_ring(tmp: Path) -> Path:
    """A ring of three nodes that refuse connections at once (nothing listens on port 9)."""
    tmp.mkdir(parents=True, exist_ok=True)
    ring = tmp / "ring.json"
    nodes = tuple(Node(id=f"n{i}", url="http://127.0.0.1:9") for i in (1, 2, 3))
    save_ring_file(ring, RingSpec(epoch=1, partition_power=8, replicas=3, nodes=nodes))
    return ring


async def _started_registry(app: web.Application) -> CollectorRegistry:
    """The app's registry once it has started: some series are registered by its cleanup
    contexts (the mirror's, for one), not by create_app."""
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        return app[REGISTRY_KEY]
    finally:
        await runner.cleanup()


async def gateway_registry(tmp: Path) -> CollectorRegistry:
    from gateway import create_app

    config = GatewayConfig(
        data_dir=tmp,
        ring_file=_unreachable_ring(tmp),
        cluster_secret=b"test",
        admin_key_sha256="0" * 64,
    )
    return await _started_registry(create_app(config))


async def node_registry(tmp: Path) -> CollectorRegistry:
    """A node as deployed, on a disk store and with a ring (the sweeper's and the replicator's
    series exist only then)."""
    from storage_node import create_app

    ring = str(_unreachable_ring(tmp / "node-ring"))
    config = NodeConfig(node_id="n1", data_dir=tmp / "node", cluster_secret=b"test", ring_file=ring)
    return await _started_registry(create_app(config))


async def exported_names(tmp: Path) -> set[str]:
    """Sample names a started gateway and a started node export."""
    gateway = await gateway_registry(tmp / "gateway")
    return sample_names(gateway) | sample_names(await node_registry(tmp))


_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_IDENTIFIER = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


def family_name(sample: str) -> str:
    """The metric family a histogram sample belongs to (other names are their own family)."""
    for suffix in ("_bucket", "_count", "_sum"):
        if sample.endswith(suffix):
            return sample.removesuffix(suffix)
    return sample


def promql_metric_names(expr: str) -> set[str]:
    """Metric names in a PromQL expression: shardgate's own, its processes' and Prometheus's
    per-target ones (label values are dropped first, so a quoted name is not taken for a
    metric)."""
    bare = _STRING.sub('""', expr)
    return {
        name
        for name in _IDENTIFIER.findall(bare)
        if name.startswith(("shardgate_", "process_", "python_")) or name in PROMETHEUS_OWN
    }


def unknown_metrics(exprs: Iterable[str], known: set[str]) -> dict[str, set[str]]:
    """expr -> names it uses that nobody exports; an expression naming no metric is unknown too."""
    allowed = known | PROMETHEUS_OWN
    problems = {}
    for expr in exprs:
        names = promql_metric_names(expr)
        if not names:
            problems[expr] = {"<no metric>"}
        elif names - allowed:
            problems[expr] = names - allowed
    return problems


def check_shardgate_command(argv: list[str]) -> str:
    """Parse a `shardgate ...` command line with the real CLI parser; returns the subcommand."""
    assert Path(argv[0]).name == "shardgate", argv
    args = build_parser().parse_args(argv[1:])
    assert args.command in {"gateway", "node"}, argv
    return str(args.command)


def split_command(line: str) -> list[str]:
    return shlex.split(line)
