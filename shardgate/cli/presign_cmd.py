"""`shardgate presign BUCKET/KEY`: ask the gateway for a direct-to-node URL and print the curl
commands that upload to it and commit, or download from it."""

from __future__ import annotations

import argparse
import shlex

from shardgate.cli.gateway_client import add_gateway_options, call_gateway


def _presign(args: argparse.Namespace) -> int:
    bucket, _, key = args.target.partition("/")
    if not bucket or not key:
        raise SystemExit("shardgate presign: name the object as BUCKET/KEY")
    body: dict[str, object] = {
        "bucket": bucket,
        "key": key,
        "method": args.method,
        "expires_in": args.expires,
    }
    if args.max_size is not None:
        body["max_size"] = args.max_size
    if args.content_type:
        body["content_type"] = args.content_type
    signed = call_gateway(args, "POST", "/v1/presign", body)
    url = shlex.quote(signed["url"])
    print(f"# valid until {signed['expires_at']}")
    if args.method == "GET":
        print(f"curl -fsS -o {shlex.quote(key.rsplit('/', 1)[-1])} {url}")
        return 0
    headers = " ".join(f"-H {shlex.quote(f'{k}: {v}')}" for k, v in signed["headers"].items())
    print(f"curl -fsS -X PUT {headers} --data-binary @FILE {url}".replace("  ", " "))
    commit = f'{{"upload_id": "{signed["upload_id"]}", "size": SIZE, "md5": "MD5"}}'
    print(
        f"curl -fsS -H \"Authorization: Bearer $SHARDGATE_API_KEY\" -d '{commit}' "
        f'"$SHARDGATE_URL/v1/objects/{bucket}/{key}/commit"'
    )
    return 0


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    presign = sub.add_parser("presign", help="a direct-to-node URL for an upload or a download")
    add_gateway_options(presign)
    presign.add_argument("target", metavar="BUCKET/KEY")
    presign.add_argument("--method", choices=("PUT", "GET"), default="PUT")
    presign.add_argument("--expires", type=int, default=900, help="seconds the URL stays valid")
    presign.add_argument("--max-size", type=int, help="refuse uploads larger than this")
    presign.add_argument("--content-type", help="the only type the upload may declare")
    presign.set_defaults(func=_presign)
