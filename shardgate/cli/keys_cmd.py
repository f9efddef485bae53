"""`shardgate keys create|list|revoke`: manage API keys through the gateway's admin endpoint."""

from __future__ import annotations

import argparse
import sys

from shardgate.cli.gateway_client import add_gateway_options, call_gateway


def _create(args: argparse.Namespace) -> int:
    body = {
        "name": args.name,
        "rights": args.rights.split(","),
        "buckets": args.buckets.split(",") if args.buckets else None,
    }
    created = call_gateway(args, "POST", "/v1/keys", body)
    print(f"id      {created['id']}\nkey     {created['key']}   (shown once; store it now)")
    print(f"rights  {','.join(created['rights'])}\nbuckets {','.join(created['buckets'] or ['*'])}")
    return 0


def _list(args: argparse.Namespace) -> int:
    for key in call_gateway(args, "GET", "/v1/keys")["keys"]:
        state = "revoked" if key["revoked"] else "active"
        buckets = ",".join(key["buckets"] or ["*"])
        print(f"{key['id']}  {state:8} {','.join(key['rights']):18} {buckets:30} {key['name']}")
    return 0


def _revoke(args: argparse.Namespace) -> int:
    call_gateway(args, "DELETE", f"/v1/keys/{args.id}")
    print(f"revoked {args.id}", file=sys.stderr)
    return 0


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    keys = sub.add_parser("keys", help="create, list and revoke API keys")
    add_gateway_options(keys)
    actions = keys.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="create a key; its secret is printed once")
    create.add_argument("name")
    create.add_argument("--rights", default="read,write", help="comma list of read, write, admin")
    create.add_argument("--buckets", help="comma list of buckets (default: all)")
    create.set_defaults(func=_create)
    actions.add_parser("list", help="list keys (never their secrets)").set_defaults(func=_list)
    revoke = actions.add_parser("revoke", help="revoke a key by id")
    revoke.add_argument("id")
    revoke.set_defaults(func=_revoke)
