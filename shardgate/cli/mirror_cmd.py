"""`shardgate mirror status|retry|run`: the S3 mirror's outbox. status and retry go through the
gateway's admin API (so they work from anywhere with an admin key); run starts workers here."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path

from shardgate.cli.gateway_client import add_gateway_options, call_gateway
from shardgate.config import load_gateway_config
from shardgate.logs import setup_logging


def _status(args: argparse.Namespace) -> int:
    status = call_gateway(args, "GET", "/v1/mirror")
    if args.json:
        print(json.dumps(status, indent=2))
        return 0
    target = status["target"]
    print(f"target   s3://{target['bucket'] or '(not configured)'}/{target['prefix']}")
    print(f"queued   {status['depth']['queued']}")
    print(f"failed   {status['depth']['failed']}")
    print(f"lag      {status['lag_seconds']:.1f} s")
    for job in status["recent_failures"]:
        print(
            f"  job {job['id']}: {job['op']} {job['bucket']}/{job['key']} "
            f"after {job['attempts']} attempts: {job['last_error']}"
        )
    return 0


def _retry(args: argparse.Namespace) -> int:
    body: dict[str, object] = {"all": True} if args.all else {"job": args.job}
    answer = call_gateway(args, "POST", "/v1/mirror/retry", body)
    print(f"requeued {answer['requeued']} job(s)", file=sys.stderr)
    return 0


def _run(args: argparse.Namespace) -> int:
    from cloud_sync.standalone import run_mirror

    config = load_gateway_config(
        args.config, os.environ, {"data_dir": args.data, "ring_file": args.ring}
    )
    setup_logging(config.log_level, json_lines=config.log_json, name="mirror")
    asyncio.run(run_mirror(config, args.metrics_port))
    return 0


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    mirror = sub.add_parser("mirror", help="the S3 mirror: status, retry failed jobs, run workers")
    actions = mirror.add_subparsers(dest="action", required=True)
    status = actions.add_parser("status", help="queue depth, lag and recent failures")
    add_gateway_options(status)
    status.add_argument("--json", action="store_true", help="print the gateway's JSON answer")
    status.set_defaults(func=_status)
    retry = actions.add_parser("retry", help="requeue parked (failed) jobs")
    add_gateway_options(retry)
    which = retry.add_mutually_exclusive_group(required=True)
    which.add_argument("--all", action="store_true", help="every failed job")
    which.add_argument("--job", type=int, help="one job by id (see `mirror status`)")
    retry.set_defaults(func=_retry)
    run = actions.add_parser("run", help="run mirror workers in this process")
    run.add_argument("--config", type=Path, help="the gateway's TOML file")
    run.add_argument("--data", type=Path, help="the gateway's data directory (its catalog)")
    run.add_argument("--ring", type=Path, help="ring file")
    run.add_argument("--metrics-port", type=int, help="serve Prometheus metrics on this port")
    run.set_defaults(func=_run)
