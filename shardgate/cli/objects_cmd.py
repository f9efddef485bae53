"""`shardgate put|get|ls|rm`: objects from the command line, with progress, parallel parts and
resume for large files."""

from __future__ import annotations

import argparse
import asyncio
import mimetypes
import re
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp

from shardgate.cli.gateway_client import add_gateway_options, call_gateway, gateway_settings
from shardgate.transfer import Gateway, TransferError, Uploader, download

_SIZE = re.compile(r"(\d+)\s*([kmg]?)(i?b)?", re.IGNORECASE)


def parse_size(text: str) -> int:
    """'16M', '16MiB', '1g' or a plain number of bytes."""
    match = _SIZE.fullmatch(text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(f"not a size: {text!r}")
    power = "_kmg".index((match[2] or "_").lower())
    return int(match[1]) << (10 * power)


def _target(text: str) -> tuple[str, str]:
    bucket, _, key = text.partition("/")
    if not bucket or not key:
        raise SystemExit(f"name the object as BUCKET/KEY, not {text!r}")
    return bucket, key


async def _put(args: argparse.Namespace) -> int:
    bucket, key = _target(args.target)
    content_type = (
        args.content_type or mimetypes.guess_type(args.file.name)[0] or "application/octet-stream"
    )
    url, api_key = gateway_settings(args)
    timeout = aiohttp.ClientTimeout(total=None, sock_read=300)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        uploader = Uploader(
            Gateway(session, url, api_key),
            part_size=args.part_size,
            parallel=args.parallel,
            quiet=args.quiet,
        )
        record = await uploader.upload(args.file, bucket, key, content_type)
    print(f"{bucket}/{key}  {record['size']} bytes  etag {record['etag']}")
    return 0


async def _get(args: argparse.Namespace) -> int:
    bucket, key = _target(args.target)
    target = args.file or Path(key.rsplit("/", 1)[-1])
    url, api_key = gateway_settings(args)
    timeout = aiohttp.ClientTimeout(total=None, sock_read=300)
    async with aiohttp.ClientSession(timeout=timeout, auto_decompress=False) as session:
        size = await download(Gateway(session, url, api_key), bucket, key, target, quiet=args.quiet)
    print(f"{target}  {size} bytes")
    return 0


def _ls(args: argparse.Namespace) -> int:
    bucket, _, prefix = args.target.partition("/")
    after = ""
    while True:
        page = call_gateway(
            args, "GET", f"/v1/objects/{bucket}?prefix={quote(prefix)}&after={after}"
        )
        for item in page["objects"]:
            print(f"{item['size']:>14}  {item['version']}  {item['key']}")
        if not page["next"]:
            return 0
        after = page["next"]


def _rm(args: argparse.Namespace) -> int:
    bucket, key = _target(args.target)
    call_gateway(args, "DELETE", f"/v1/objects/{bucket}/{quote(key, safe='/')}")
    return 0


def _run(
    command: Callable[[argparse.Namespace], Coroutine[Any, Any, int]],
) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        try:
            code: int = asyncio.run(command(args))
            return code
        except TransferError as exc:
            print(f"shardgate: {exc}", file=sys.stderr)
            return 1

    return run


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    put = sub.add_parser("put", help="upload a file (large files in parallel parts; resumable)")
    add_gateway_options(put)
    put.add_argument("file", type=Path)
    put.add_argument("target", metavar="BUCKET/KEY")
    put.add_argument("--content-type")
    put.add_argument("--part-size", type=parse_size, default=parse_size("16M"))
    put.add_argument("--parallel", type=int, default=4, help="parts in flight")
    put.add_argument("--quiet", action="store_true", help="no progress line")
    put.set_defaults(func=_run(_put))

    get = sub.add_parser("get", help="download an object (resumes an interrupted download)")
    add_gateway_options(get)
    get.add_argument("target", metavar="BUCKET/KEY")
    get.add_argument("file", type=Path, nargs="?")
    get.add_argument("--quiet", action="store_true")
    get.set_defaults(func=_run(_get))

    ls = sub.add_parser("ls", help="list objects: BUCKET or BUCKET/PREFIX")
    add_gateway_options(ls)
    ls.add_argument("target", metavar="BUCKET[/PREFIX]")
    ls.set_defaults(func=_ls)

    rm = sub.add_parser("rm", help="delete an object")
    add_gateway_options(rm)
    rm.add_argument("target", metavar="BUCKET/KEY")
    rm.set_defaults(func=_rm)
