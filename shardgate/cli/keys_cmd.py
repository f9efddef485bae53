"""`shardgate keys create|list|revoke`: manage API keys through the gateway's admin endpoint.

The gateway and admin key come from --url/--admin-key, or SHARDGATE_URL/SHARDGATE_API_KEY
(as `shardgate dev` writes them to dev.env).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
from typing import Any


def _call(
    args: argparse.Namespace, method: str, path: str, body: dict[str, Any] | None = None
) -> Any:
    url = (args.url or os.environ.get("SHARDGATE_URL", "")).rstrip("/")
    key = args.admin_key or os.environ.get("SHARDGATE_API_KEY", "")
    if not url or not key:
        raise SystemExit(
            "shardgate keys: set --url and --admin-key (or SHARDGATE_URL, SHARDGATE_API_KEY)"
        )
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url + path, data=data, method=method)  # noqa: S310
    request.add_header("Authorization", f"Bearer {key}")
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            raw = response.read()
    except urllib.error.HTTPError as exc:
        error = json.loads(exc.read() or b"{}").get("error", {})
        raise SystemExit(
            f"shardgate keys: {exc.code} {error.get('code')}: {error.get('message')}"
        ) from None
    return json.loads(raw) if raw else None


def _create(args: argparse.Namespace) -> int:
    body = {
        "name": args.name,
        "rights": args.rights.split(","),
        "buckets": args.buckets.split(",") if args.buckets else None,
    }
    created = _call(args, "POST", "/v1/keys", body)
    print(f"id      {created['id']}\nkey     {created['key']}   (shown once; store it now)")
    print(f"rights  {','.join(created['rights'])}\nbuckets {','.join(created['buckets'] or ['*'])}")
    return 0


def _list(args: argparse.Namespace) -> int:
    for key in _call(args, "GET", "/v1/keys")["keys"]:
        state = "revoked" if key["revoked"] else "active"
        buckets = ",".join(key["buckets"] or ["*"])
        print(f"{key['id']}  {state:8} {','.join(key['rights']):18} {buckets:30} {key['name']}")
    return 0


def _revoke(args: argparse.Namespace) -> int:
    _call(args, "DELETE", f"/v1/keys/{args.id}")
    print(f"revoked {args.id}", file=sys.stderr)
    return 0


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    keys = sub.add_parser("keys", help="create, list and revoke API keys")
    keys.add_argument("--url", help="gateway URL (default: $SHARDGATE_URL)")
    keys.add_argument("--admin-key", help="an admin API key (default: $SHARDGATE_API_KEY)")
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
