"""The `shardgate` command: one subcommand per module."""

from __future__ import annotations

import argparse
import sys

from shardgate.cli import (
    dev,
    keys_cmd,
    mirror_cmd,
    objects_cmd,
    presign_cmd,
    ring_cmd,
    serve,
    sweep_cmd,
)
from shardgate.config import ConfigError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="shardgate", description="self-hosted upload gateway")
    sub = parser.add_subparsers(dest="command", required=True)
    dev.add_parser(sub)
    serve.add_parsers(sub)
    ring_cmd.add_parser(sub)
    keys_cmd.add_parser(sub)
    presign_cmd.add_parser(sub)
    objects_cmd.add_parsers(sub)
    sweep_cmd.add_parser(sub)
    mirror_cmd.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except ConfigError as exc:
        print(f"shardgate: configuration error: {exc}", file=sys.stderr)
        return 2
    return code
