"""The CLI's calls to a running gateway. Its URL and key come from --url/--admin-key, or from
SHARDGATE_URL/SHARDGATE_API_KEY (as `shardgate dev` writes them to dev.env)."""

from __future__ import annotations

import argparse
import json
import os
import urllib.error
import urllib.request
from typing import Any


def add_gateway_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", help="gateway URL (default: $SHARDGATE_URL)")
    parser.add_argument("--admin-key", help="an API key (default: $SHARDGATE_API_KEY)")


def gateway_settings(args: argparse.Namespace) -> tuple[str, str]:
    """The gateway URL and API key, from flags or the environment."""
    url = (args.url or os.environ.get("SHARDGATE_URL", "")).rstrip("/")
    key = args.admin_key or os.environ.get("SHARDGATE_API_KEY", "")
    if not url or not key:
        raise SystemExit(
            "shardgate: set --url and --admin-key (or SHARDGATE_URL, SHARDGATE_API_KEY)"
        )
    return url, key


def call_gateway(
    args: argparse.Namespace,
    method: str,
    path: str,
    body: dict[str, Any] | None = None,
    *,
    timeout: float = 30.0,
) -> Any:
    """One JSON request; an error answer ends the command with its code and message."""
    url, key = gateway_settings(args)
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url + path, data=data, method=method)  # noqa: S310
    request.add_header("Authorization", f"Bearer {key}")
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            raw = response.read()
    except urllib.error.HTTPError as exc:
        error = json.loads(exc.read() or b"{}").get("error", {})
        raise SystemExit(
            f"shardgate: {exc.code} {error.get('code')}: {error.get('message')}"
        ) from None
    return json.loads(raw) if raw else None
