"""Issue 10, must-show 2: docker-compose.yml parses, every service refers to an image or to a
build whose context and Dockerfile exist, every host file it mounts exists, the shardgate
commands parse with the real CLI, and the configs and ring it mounts load. (No Docker engine
runs here, so nothing is built or started.)"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from deploy_kit import DEPLOY, check_shardgate_command

from ring import load_ring_file
from shardgate.config import load_gateway_config, load_node_config

COMPOSE = DEPLOY / "docker-compose.yml"


def _services() -> dict[str, dict[str, Any]]:
    services: dict[str, dict[str, Any]] = yaml.safe_load(COMPOSE.read_text())["services"]
    return services


def _environment(service: dict[str, Any]) -> dict[str, str]:
    """The service's environment as compose would give it, with no variables set in the shell:
    `${X:-default}` is the default, `${X:?message}` a stand-in value."""

    def substitute(match: re.Match[str]) -> str:
        return match[2] if match[1] == "-" else "set-by-the-operator"

    return {
        name: re.sub(r"\$\{\w+:([-?])([^}]*)\}", substitute, str(value))
        for name, value in service["environment"].items()
    }


def test_the_services_the_issue_asks_for() -> None:
    images = " ".join(str(s.get("image", "")) for s in _services().values())
    names = set(_services())
    assert {"gateway", "node1", "node2", "node3", "prometheus", "grafana"} <= names
    assert "seaweedfs" in images  # the S3-compatible mirror target
    assert "prom/prometheus" in images and "grafana/grafana" in images


def test_every_service_has_an_image_or_a_build_that_exists() -> None:
    for name, service in _services().items():
        build = service.get("build")
        if build is None:
            assert service.get("image"), f"{name} has neither image nor build"
            continue
        context = (COMPOSE.parent / build["context"]).resolve()
        assert context.is_dir(), name
        assert (context / build.get("dockerfile", "Dockerfile")).is_file(), name


def test_every_mounted_host_path_exists() -> None:
    named = set(yaml.safe_load(COMPOSE.read_text())["volumes"])
    for name, service in _services().items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith((".", "/")):
                assert (COMPOSE.parent / source).exists(), f"{name}: {source}"
            else:
                assert source in named, f"{name}: volume {source} is not declared"


def test_shardgate_commands_parse_and_their_files_load(tmp_path: Path) -> None:
    services = {n: s for n, s in _services().items() if "build" in s}
    mounts = {
        target: COMPOSE.parent / source
        for service in services.values()
        for source, target, *_ in (v.split(":") for v in service["volumes"])
        if source.startswith(".")
    }
    env = {"SHARDGATE_CLUSTER_SECRET": "s", "SHARDGATE_ADMIN_KEY": "k"}
    ring_ids: list[str] = []
    for name, service in services.items():
        command = check_shardgate_command(["shardgate", *service["command"]])
        config = mounts[service["command"][service["command"].index("--config") + 1]]
        if command == "gateway":
            gateway = load_gateway_config(config, {**env, **_environment(service)})
            assert gateway.mirror_endpoint == "http://s3:8333" and gateway.mirror_bucket
            ring = load_ring_file(mounts[str(gateway.ring_file)])
            ring_ids = [node.id for node in ring.nodes]
            assert all(node.url == f"http://{node.id}:9001" for node in ring.nodes)
        else:
            node_id = service["environment"]["SHARDGATE_NODE_NODE_ID"]
            assert node_id == name
            assert load_node_config(config, {**env, "SHARDGATE_NODE_NODE_ID": node_id}).port == 9001
    assert sorted(ring_ids) == sorted(n for n, s in services.items() if n != "gateway")
