"""Issue 10, must-show 2: the Kubernetes manifests pass kubernetes-validate's offline schema
check (strict: unknown fields fail), and hang together: the ring in the ConfigMap names the
StatefulSet's pods, configs load, every secret key referenced exists, every container has probes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from deploy_kit import DEPLOY, check_shardgate_command

from ring import RingSpec, load_ring_file
from shardgate.config import load_gateway_config, load_node_config

MANIFESTS = sorted((DEPLOY / "kubernetes").glob("*.yaml"))
KUBERNETES_VERSION = "1.30"


def _documents() -> list[dict[str, Any]]:
    return [
        doc for path in MANIFESTS for doc in yaml.safe_load_all(path.read_text()) if doc is not None
    ]


def _one(kind: str) -> dict[str, Any]:
    (found,) = [doc for doc in _documents() if doc["kind"] == kind]
    return found


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_manifest_passes_schema_validation(path: Path) -> None:
    for doc in yaml.safe_load_all(path.read_text()):
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_the_kinds_the_issue_asks_for() -> None:
    kinds = {doc["kind"] for doc in _documents()}
    assert kinds >= {"StatefulSet", "Deployment", "Service", "ConfigMap", "Secret"}
    statefulset = _one("StatefulSet")
    assert statefulset["spec"]["volumeClaimTemplates"]


def test_ring_in_configmap_names_the_statefulset_pods(tmp_path: Path) -> None:
    data = _one("ConfigMap")["data"]
    ring_file = tmp_path / "ring.json"
    ring_file.write_text(data["ring.json"])
    spec: RingSpec = load_ring_file(ring_file)
    statefulset = _one("StatefulSet")
    name, service = statefulset["metadata"]["name"], statefulset["spec"]["serviceName"]
    pods = [f"{name}-{i}" for i in range(statefulset["spec"]["replicas"])]
    assert [node.id for node in spec.nodes] == pods
    namespace = statefulset["metadata"]["namespace"]
    for node in spec.nodes:
        assert node.url == f"http://{node.id}.{service}.{namespace}.svc.cluster.local:9001"


def test_configs_in_configmap_load(tmp_path: Path) -> None:
    data = _one("ConfigMap")["data"]
    env = {"SHARDGATE_CLUSTER_SECRET": "s", "SHARDGATE_ADMIN_KEY": "k"}
    (tmp_path / "gateway.toml").write_text(data["gateway.toml"])
    (tmp_path / "node.toml").write_text(data["node.toml"])
    gateway = load_gateway_config(tmp_path / "gateway.toml", env)
    node = load_node_config(tmp_path / "node.toml", {**env, "SHARDGATE_NODE_NODE_ID": "x"})
    assert gateway.host == node.host == "0.0.0.0"
    assert str(gateway.ring_file) == "/etc/shardgate/ring.json"


def _containers() -> list[dict[str, Any]]:
    return [
        container
        for doc in _documents()
        if doc["kind"] in ("StatefulSet", "Deployment")
        for container in doc["spec"]["template"]["spec"]["containers"]
    ]


def test_containers_have_probes_commands_and_existing_secret_keys() -> None:
    secret_keys = set(_one("Secret")["stringData"])
    for container in _containers():
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["readinessProbe"]["httpGet"]["path"] in ("/healthz", "/readyz")
        check_shardgate_command(["shardgate", *container["args"]])
        refs = [
            env["valueFrom"]["secretKeyRef"]["key"]
            for env in container["env"]
            if "secretKeyRef" in env.get("valueFrom", {})
        ]
        assert refs and set(refs) <= secret_keys, json.dumps(container["env"])
