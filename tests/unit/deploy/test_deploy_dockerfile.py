"""Issue 10, must-show 2: the Dockerfile builds from a slim base, copies only paths that exist in
the repository, runs as a non-root user, checks /healthz, and starts a real shardgate command.
(Read statically: no Docker engine runs here.)"""

from __future__ import annotations

import json
import shlex

from deploy_kit import DEPLOY, REPO, check_shardgate_command

DOCKERFILE = DEPLOY / "Dockerfile"


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments), continuation lines joined and comments dropped."""
    joined = DOCKERFILE.read_text().replace("\\\n", " ")
    found = []
    for line in joined.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            word, _, rest = line.strip().partition(" ")
            found.append((word.upper(), rest.strip()))
    return found


def _all(name: str) -> list[str]:
    return [rest for word, rest in _instructions() if word == name]


def test_every_stage_uses_a_slim_python_base() -> None:
    bases = _all("FROM")
    assert bases and all(base.split()[0].startswith("python:3.11-slim") for base in bases)


def test_copied_paths_exist_in_the_build_context() -> None:
    sources = []
    for rest in _all("COPY"):
        words = shlex.split(rest)
        if any(word.startswith("--from") for word in words):
            continue
        sources += [word for word in words[:-1] if not word.startswith("--")]
    assert "pyproject.toml" in sources
    for source in sources:
        assert (REPO / source).exists(), source
    ignored = (REPO / ".dockerignore").read_text().split()
    assert ".venv" in ignored and "data" in ignored


def test_runs_as_a_non_root_user() -> None:
    users = _all("USER")
    assert users and users[-1] not in ("root", "0")


def test_health_check_asks_healthz() -> None:
    (check,) = _all("HEALTHCHECK")
    assert "/healthz" in check and "CMD" in check


def test_entrypoint_and_command_are_a_real_shardgate_command() -> None:
    (entrypoint,) = _all("ENTRYPOINT")
    (command,) = _all("CMD")
    assert check_shardgate_command([*json.loads(entrypoint), *json.loads(command)]) == "gateway"
