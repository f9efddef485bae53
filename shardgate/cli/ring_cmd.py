"""`shardgate ring`: create a ring file, change its nodes (each change is a new epoch that
running nodes and gateways pick up), show its balance, and show where an object goes.

Each subcommand's `func` takes the parsed `argparse.Namespace`, prints to stdout and
returns the process exit code (errors go to stderr with code 1).
"""

import argparse
import dataclasses
import sys
from collections.abc import Callable
from pathlib import Path

from ring import (
    DEFAULT_PARTITION_POWER,
    DEFAULT_REPLICAS,
    STRATEGY_NAMES,
    Node,
    Ring,
    RingError,
    RingSpec,
    load_ring_file,
    object_hash,
    save_ring_file,
)

_NODE_FIELDS = ("id", "url", "weight", "zone")
_NODE_SYNTAX = "id=ID,url=URL[,weight=W][,zone=Z]"


def add_parser(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Register `ring` and its subcommands on `sub`."""
    ring_parser = sub.add_parser("ring", help="create and inspect ring files")
    commands = ring_parser.add_subparsers(dest="ring_command", required=True)

    create = commands.add_parser("create", help="write a new ring file (epoch 1)")
    create.add_argument("out", type=Path, help="ring file to write (.json)")
    create.add_argument(
        "--node", action="append", required=True, type=_parse_node, metavar=_NODE_SYNTAX
    )
    create.add_argument(
        "--partition-power",
        type=int,
        default=DEFAULT_PARTITION_POWER,
        help="2**P partitions; fixed for the life of the cluster (default %(default)s)",
    )
    create.add_argument(
        "--replicas", type=int, default=DEFAULT_REPLICAS, help="default %(default)s"
    )
    create.add_argument("--strategy", choices=STRATEGY_NAMES, default="ketama")
    create.add_argument("--force", action="store_true", help="replace an existing ring file")
    create.set_defaults(func=_create)

    show = commands.add_parser("show", help="print epoch, nodes and partitions per node")
    show.add_argument("file", type=Path)
    show.set_defaults(func=_show)

    add = commands.add_parser("add-node", help="add a node (a new epoch)")
    add.add_argument("file", type=Path)
    add.add_argument("--node", required=True, type=_parse_node, metavar=_NODE_SYNTAX)
    add.set_defaults(func=_add_node)

    remove = commands.add_parser("remove-node", help="remove a node (a new epoch)")
    remove.add_argument("file", type=Path)
    remove.add_argument("node_id", metavar="ID")
    remove.set_defaults(func=_remove_node)

    weight = commands.add_parser("set-weight", help="change a node's weight (a new epoch)")
    weight.add_argument("file", type=Path)
    weight.add_argument("node_id", metavar="ID")
    weight.add_argument("weight", type=float)
    weight.set_defaults(func=_set_weight)

    place = commands.add_parser("place", help="print the partition and nodes of an object")
    place.add_argument("file", type=Path)
    place.add_argument("object", metavar="BUCKET/KEY")
    place.set_defaults(func=_place)


def _create(args: argparse.Namespace) -> int:
    out: Path = args.out
    # A fresh ring starts at epoch 1; silently replacing a live ring would send its epoch
    # backwards and let stale placements look current.
    if out.exists() and not args.force:
        return _fail(f"{out} exists; pass --force to replace it")
    try:
        spec = RingSpec(
            epoch=1,
            partition_power=args.partition_power,
            replicas=args.replicas,
            nodes=tuple(args.node),
            strategy=args.strategy,
        )
        save_ring_file(out, spec)
    except RingError as exc:
        return _fail(str(exc))
    print(f"wrote {out}: epoch {spec.epoch}, {len(spec.nodes)} nodes")
    return 0


def _add_node(args: argparse.Namespace) -> int:
    return _change(args.file, lambda nodes: (*nodes, args.node))


def _remove_node(args: argparse.Namespace) -> int:
    return _change(args.file, lambda nodes: tuple(n for n in nodes if n.id != args.node_id))


def _set_weight(args: argparse.Namespace) -> int:
    return _change(
        args.file,
        lambda nodes: tuple(
            dataclasses.replace(n, weight=args.weight) if n.id == args.node_id else n for n in nodes
        ),
    )


def _change(path: Path, edit: Callable[[tuple[Node, ...]], tuple[Node, ...]]) -> int:
    """Write the ring with edited nodes as the next epoch; report how much data will move."""
    try:
        old = load_ring_file(path)
        nodes = edit(old.nodes)
        if nodes == old.nodes:
            return _fail("that changes nothing (unknown node id, or the same value)")
        new = old.with_nodes(nodes)
        before, after = Ring(old), Ring(new)
        save_ring_file(path, new)
    except RingError as exc:
        return _fail(str(exc))
    moved = sum(
        len({n.id for n in after.primaries(p)} - {n.id for n in before.primaries(p)})
        for p in range(1 << new.partition_power)
    )
    slots = (1 << new.partition_power) * min(new.replicas, len(new.nodes))
    print(
        f"wrote {path}: epoch {new.epoch}, {len(new.nodes)} nodes; {moved} of {slots} "
        f"replica slots move ({100 * moved / slots:.1f}%)"
    )
    return 0


def _show(args: argparse.Namespace) -> int:
    try:
        ring = Ring(load_ring_file(args.file))
    except RingError as exc:
        return _fail(str(exc))
    partitions = 1 << ring.partition_power
    slots = partitions * min(ring.replicas, len(ring.nodes))
    print(
        f"epoch {ring.epoch}  strategy {ring.spec.strategy}  "
        f"partitions {partitions} (power {ring.partition_power})  replicas {ring.replicas}"
    )
    if ring.replicas > len(ring.nodes):
        print(f"warning: only {len(ring.nodes)} nodes, so partitions have fewer replicas")
    print(f"{'node':<12} {'zone':<8} {'weight':>6} {'primary':>8} {'share':>7}  url")
    for node in ring.nodes:
        held = len(ring.partitions_of(node.id))
        print(
            f"{node.id:<12} {node.zone or '-':<8} {node.weight:>6g} {held:>8} "
            f"{100 * held / slots:>6.2f}%  {node.url}"
        )
    return 0


def _place(args: argparse.Namespace) -> int:
    bucket, sep, key = args.object.partition("/")
    if not (bucket and sep and key):
        return _fail(f"object must be BUCKET/KEY, got {args.object!r}")
    try:
        ring = Ring(load_ring_file(args.file))
    except RingError as exc:
        return _fail(str(exc))
    partition = ring.partition(bucket, key)
    print(f"hash       {object_hash(bucket, key)}")
    print(f"partition  {partition}")
    print(f"primaries  {_describe(ring.primaries(partition))}")
    print(f"handoffs   {_describe(ring.handoffs(partition))}")
    return 0


def _parse_node(text: str) -> Node:
    fields: dict[str, str] = {}
    for item in text.split(","):
        name, sep, value = item.partition("=")
        if not sep or name not in _NODE_FIELDS or name in fields:
            raise argparse.ArgumentTypeError(f"expected {_NODE_SYNTAX}, got {text!r}")
        fields[name] = value
    if "id" not in fields or "url" not in fields:
        raise argparse.ArgumentTypeError(f"id and url are required: {_NODE_SYNTAX}")
    try:
        return Node(
            id=fields["id"],
            url=fields["url"],
            weight=float(fields.get("weight", "1")),
            zone=fields.get("zone", ""),
        )
    except (RingError, ValueError) as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _describe(nodes: tuple[Node, ...]) -> str:
    return ", ".join(f"{node.id} ({node.url})" for node in nodes) or "-"


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 1
