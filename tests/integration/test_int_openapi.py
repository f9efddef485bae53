"""gateway/openapi.yaml against a real cluster: the gateway serves exactly that file, and every
answer to requests schemathesis generates from it is documented there (no 5xx; status, content
type, body schema and headers as described).

The schema is read from the file when the module is imported, so each operation becomes its own
test item, and requests go to the cluster the fixture starts. (schemathesis's lazy
`from_fixture` loader, which would fetch the served copy instead, does not run on pytest 9; the
first test pins the served copy to the file.)

Generated object requests are confined to SEED_BUCKET. PINNED_KEY lies outside the spec's key
pattern, so no generated DELETE can empty that bucket and let a generated bucket DELETE remove it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from urllib.parse import quote

import pytest
import requests
import schemathesis
import yaml
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

import gateway
from shardgate.cli.dev import DevCluster

SPEC_FILE = Path(gateway.__file__).parent / "openapi.yaml"
SEED_BUCKET = "openapi-seed"
PINNED_KEY = "pinned/keep me.txt"
# The spec's examples name the first two keys, so the examples phase finds real objects.
SEEDED = {
    "readme.txt": (b"hello", "text/plain"),
    "photos/2024/cat.png": (b"\x89PNG\r\n\x1a\n" + bytes(64), "image/png"),
    PINNED_KEY: (b"not for generated deletes", "text/plain"),
}
# About 20 operations; fuzzing stops at MAX_EXAMPLES per operation and generation mode, and the
# examples and coverage phases add their own bounded cases: a few hundred requests in all.
MAX_EXAMPLES = 10
SEED = 20_240_611
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]

schema = schemathesis.openapi.from_path(
    SPEC_FILE,
    config=schemathesis.Config.from_dict(
        {
            "seed": SEED,
            # Each request crosses four processes; slowness is not what this test is about.
            "suppress-health-check": ["too_slow", "filter_too_much", "data_too_large"],
            "request-timeout": 30,
            "generation": {
                "mode": "all",
                "max-examples": MAX_EXAMPLES,
                "database": "none",
                "no-shrink": True,
            },
            "phases": {"stateful": {"enabled": False}},
            "operations": [
                {
                    "include-path-regex": "^/v1/objects/",
                    "parameters": {"path.bucket": SEED_BUCKET},
                }
            ],
        }
    ),
)


def _auth(cluster: DevCluster) -> dict[str, str]:
    return {"Authorization": f"Bearer {cluster.api_key}"}


@pytest.fixture(scope="module")
def seeded(shared_cluster: DevCluster) -> DevCluster:
    """The shared cluster with SEED_BUCKET, open to every origin, holding the SEEDED objects."""
    url, auth = shared_cluster.url, _auth(shared_cluster)
    # Any origin, so generated preflights can be answered 204 as well as 403.
    policy = {"cors_origins": ["*"]}
    resp = requests.put(f"{url}/v1/buckets/{SEED_BUCKET}", json=policy, headers=auth, timeout=30)
    assert resp.status_code in (200, 201), resp.text
    for key, (data, content_type) in SEEDED.items():
        resp = requests.put(
            f"{url}/v1/objects/{SEED_BUCKET}/{quote(key)}",
            data=data,
            headers={**auth, "Content-Type": content_type},
            timeout=30,
        )
        assert resp.status_code == 201, resp.text
    return shared_cluster


def test_served_spec_is_the_file(seeded: DevCluster) -> None:
    resp = requests.get(f"{seeded.url}/v1/openapi.yaml", timeout=30)
    assert resp.status_code == 200
    assert resp.headers["Content-Type"].startswith("application/yaml")
    assert yaml.safe_load(resp.content) == yaml.safe_load(SPEC_FILE.read_bytes())


@schema.parametrize()
def test_answers_match_the_spec(case: schemathesis.Case, seeded: DevCluster) -> None:
    case.call_and_validate(base_url=seeded.url, headers=_auth(seeded), checks=CHECKS)


def test_generated_requests_stayed_in_their_sandbox(seeded: DevCluster) -> None:
    """The pinned object, and so its bucket, outlived every generated DELETE."""
    url = f"{seeded.url}/v1/objects/{SEED_BUCKET}/{quote(PINNED_KEY)}"
    resp = requests.get(url, headers=_auth(seeded), timeout=30)
    assert resp.status_code == 200, resp.text
    data = SEEDED[PINNED_KEY][0]
    assert resp.content == data
    assert resp.headers["ETag"] == f'"{hashlib.md5(data).hexdigest()}"'
