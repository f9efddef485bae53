"""Issue 10, must-show 2: the systemd units parse, run real `shardgate` subcommands with real
flags, carry the hardening options, and pass `systemd-analyze verify` where it is installed
(with ExecStart pointed at this checkout's shardgate, since /opt/shardgate does not exist here)."""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from deploy_kit import DEPLOY, check_shardgate_command, split_command

UNITS = sorted((DEPLOY / "systemd").glob("*.service"))
HARDENING = {
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
    "CapabilityBoundingSet": "",
}


def _unit(path: Path) -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(path.read_text())
    return parser


def _instance(path: Path) -> str:
    """The unit's text as one instance (node n1) would see it."""
    return path.read_text().replace("%i", "n1")


@pytest.mark.parametrize("path", UNITS, ids=lambda p: p.name)
def test_unit_runs_a_real_shardgate_command(path: Path) -> None:
    unit = _unit(path)
    assert {"Unit", "Service", "Install"} <= set(unit.sections())
    argv = split_command(_instance(path).split("ExecStart=", 1)[1].splitlines()[0])
    expected = "node" if path.name.startswith("shardgate-node") else "gateway"
    assert check_shardgate_command(argv) == expected
    service = unit["Service"]
    assert service["User"] == "shardgate"
    for option, value in HARDENING.items():
        assert service.get(option) == value, option


def test_both_roles_have_a_unit() -> None:
    assert [p.name for p in UNITS] == ["shardgate-gateway.service", "shardgate-node@.service"]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze missing")
@pytest.mark.parametrize("path", UNITS, ids=lambda p: p.name)
def test_systemd_analyze_verify_is_silent(path: Path, tmp_path: Path) -> None:
    shardgate = Path(sys.executable).parent / "shardgate"
    text = path.read_text().replace("/opt/shardgate/bin/shardgate", str(shardgate))
    local = tmp_path / path.name.replace("@.", "@n1.")
    local.write_text(text)
    result = subprocess.run(
        ["systemd-analyze", "verify", str(local)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    # verify answers 0 even for unknown keys, so any message at all about the unit fails
    messages = [line for line in (result.stdout + result.stderr).splitlines() if local.name in line]
    assert result.returncode == 0 and messages == [], result.stdout + result.stderr
