"""gateway/openapi.yaml and gateway.routes.ROUTES describe the same API: every route is
documented, every documented operation is served, and the spec agrees with itself."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

import gateway
from gateway.routes import ROUTES

SPEC: dict[str, Any] = yaml.safe_load((Path(gateway.__file__).parent / "openapi.yaml").read_text())
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
# `{name}` or `{name:regex}`; the regex may hold one level of braces, as in `{n:\d{1,5}}`.
_VARIABLE = re.compile(r"\{(\w+)(?::(?:[^{}]|\{[^{}]*\})*)?\}")


def _template(path: str) -> str:
    return _VARIABLE.sub(r"{\1}", path)


def _operations() -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    """'METHOD /path' -> (path item, operation), for every operation in the spec."""
    return {
        f"{method.upper()} {path}": (item, operation)
        for path, item in SPEC["paths"].items()
        for method, operation in item.items()
        if method in HTTP_METHODS
    }


def _routed() -> list[str]:
    """'METHOD /path' for every route in the table, as written (without aiohttp's HEADs)."""
    return [f"{route.method.upper()} {_template(route.path)}" for route in ROUTES]


def _served() -> set[str]:
    """What the app answers: the table plus the HEAD aiohttp adds beside each GET."""
    served = set(_routed())
    for route in ROUTES:
        if route.method.upper() == "GET" and route.kwargs.get("allow_head", True):
            served.add(f"HEAD {_template(route.path)}")
    return served


def _resolve(node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        target: Any = SPEC
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


@pytest.mark.parametrize("operation", _routed())
def test_every_route_is_documented(operation: str) -> None:
    assert operation in _operations(), f"{operation} is routed but not in gateway/openapi.yaml"


@pytest.mark.parametrize("operation", sorted(_operations()))
def test_every_documented_operation_is_served(operation: str) -> None:
    assert operation in _served(), f"{operation} is in gateway/openapi.yaml but not routed"


@pytest.mark.parametrize("operation", sorted(_operations()))
def test_path_variables_are_declared(operation: str) -> None:
    item, op = _operations()[operation]
    params = [_resolve(p) for p in [*item.get("parameters", []), *op.get("parameters", [])]]
    declared = {p["name"] for p in params if p["in"] == "path"}
    assert declared == set(re.findall(r"\{(\w+)\}", operation.split(" ", 1)[1]))
    assert all(p["required"] for p in params if p["in"] == "path")


@pytest.mark.parametrize("operation", sorted(_operations()))
def test_keyed_operations_document_401(operation: str) -> None:
    _, op = _operations()[operation]
    security = op.get("security", SPEC["security"])
    if any("bearerAuth" in requirement for requirement in security):
        assert "401" in op["responses"]


@pytest.mark.parametrize("operation", sorted(_operations()))
def test_error_bodies_use_the_error_schema(operation: str) -> None:
    _, op = _operations()[operation]
    for status, response in op["responses"].items():
        content = _resolve(response).get("content", {})
        if int(status) >= 400 and "application/json" in content:
            schema = content["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/Error"}, status


def test_operation_ids_are_unique() -> None:
    ids = [op["operationId"] for _, op in _operations().values()]
    assert len(ids) == len(set(ids))
