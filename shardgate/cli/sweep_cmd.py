"""`shardgate sweep [--dry-run] [--node URL|--all]`: run the sweeper once through the gateway
(which alone can tell which replicas the catalog still wants) and print what it reclaimed."""

from __future__ import annotations

import argparse
import json
from typing import Any

from shardgate.cli.gateway_client import add_gateway_options, call_gateway
from shardgate.sweep_report import KINDS

SWEEP_TIMEOUT = 3600.0


def _size(count: int) -> str:
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"


def _print_report(title: str, report: dict[str, Any]) -> None:
    print(title)
    for kind in KINDS:
        entry = report["kinds"][kind]
        print(f"  {kind:<10} {entry['files']:>8} files {_size(entry['bytes']):>12}")
    if report.get("errors"):
        print(f"  errors     {report['errors']:>8}")
    if report.get("error"):
        print(f"  stopped: {report['error']}")


def _sweep(args: argparse.Namespace) -> int:
    body = {"dry_run": args.dry_run, "node": args.node, "force": args.force}
    answer = call_gateway(args, "POST", "/v1/sweep", body, timeout=SWEEP_TIMEOUT)
    if args.json:
        print(json.dumps(answer, indent=2))
    else:
        for node in answer["nodes"]:
            _print_report(f"node {node['node']} ({node['url']})", node)
        verb = "would remove" if args.dry_run else "removed"
        print(f"total: {verb} {answer['files']} files, {_size(answer['bytes'])}")
    return 1 if any(node["error"] or node["errors"] for node in answer["nodes"]) else 0


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sweep = sub.add_parser("sweep", help="reclaim what failed and abandoned uploads left behind")
    add_gateway_options(sweep)
    which = sweep.add_mutually_exclusive_group()
    which.add_argument("--node", help="sweep only this node (its URL or id)")
    which.add_argument("--all", action="store_true", help="sweep every node (the default)")
    sweep.add_argument("--dry-run", action="store_true", help="report, remove nothing")
    sweep.add_argument(
        "--force", action="store_true", help="sweep even where most replicas look unwanted"
    )
    sweep.add_argument("--json", action="store_true", help="print the gateway's JSON answer")
    sweep.set_defaults(func=_sweep)
