"""`shardgate node` and `shardgate gateway`: run one service in the foreground."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from shardgate.config import load_gateway_config, load_node_config
from shardgate.logs import setup_logging
from shardgate.web import run_app


def _node(args: argparse.Namespace) -> int:
    from storage_node import create_app

    config = load_node_config(
        args.config,
        os.environ,
        {
            "node_id": args.id,
            "data_dir": args.data,
            "host": args.host,
            "port": args.port,
            "ring_file": args.ring,
        },
    )
    setup_logging(config.log_level, json_lines=config.log_json, name=f"node/{config.node_id}")
    run_app(
        create_app(config),
        config.host,
        config.port,
        f"shardgate node {config.node_id}",
        access_log=config.access_log,
    )
    return 0


def _gateway(args: argparse.Namespace) -> int:
    from gateway import create_app

    config = load_gateway_config(
        args.config,
        os.environ,
        {"data_dir": args.data, "ring_file": args.ring, "host": args.host, "port": args.port},
    )
    setup_logging(config.log_level, json_lines=config.log_json, name="gateway")
    run_app(
        create_app(config),
        config.host,
        config.port,
        "shardgate gateway",
        access_log=config.access_log,
    )
    return 0


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    node = sub.add_parser("node", help="run a storage node on one data directory")
    node.add_argument("--config", type=Path, help="TOML file ([node] and [cluster] sections)")
    node.add_argument("--id", help="node id as the ring names it")
    node.add_argument("--data", type=Path, help="data directory (one disk)")
    node.add_argument("--ring", help="ring file, watched for new epochs (for replication)")
    node.add_argument("--host")
    node.add_argument("--port", type=int, help="0 picks a free port")
    node.set_defaults(func=_node)

    gateway = sub.add_parser("gateway", help="run the public gateway")
    gateway.add_argument("--config", type=Path, help="TOML file ([gateway] and [cluster] sections)")
    gateway.add_argument("--data", type=Path, help="directory for the catalog")
    gateway.add_argument("--ring", type=Path, help="ring file (JSON or TOML)")
    gateway.add_argument("--host")
    gateway.add_argument("--port", type=int, help="0 picks a free port")
    gateway.set_defaults(func=_gateway)
