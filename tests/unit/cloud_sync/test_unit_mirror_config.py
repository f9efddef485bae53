"""The mirror's settings: plain ones from TOML and SHARDGATE_GATEWAY_MIRROR_*, credentials only
from SHARDGATE_MIRROR_* variables or files, and S3's own limits checked at start-up."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from cloud_sync import check_mirror_config
from shardgate.config import ConfigError, MiB, load_gateway_config

BASE = {"SHARDGATE_CLUSTER_SECRET": "s", "SHARDGATE_ADMIN_KEY": "a"}
REQUIRED = {"data_dir": "/srv/gw", "ring_file": "/etc/ring.json"}


def test_defaults_leave_the_mirror_without_a_target_and_workers_in_the_gateway() -> None:
    config = load_gateway_config(None, BASE, REQUIRED)
    assert (config.mirror_bucket, config.mirror_in_gateway) == ("", True)
    assert (config.mirror_access_key_id, config.mirror_secret_access_key) == ("", "")
    check_mirror_config(config)


def test_settings_from_toml_and_environment_credentials_from_env_or_file(tmp_path: Path) -> None:
    toml = tmp_path / "g.toml"
    secret_file = tmp_path / "secret"
    secret_file.write_text("from-a-file\n")
    toml.write_text(
        '[gateway]\nmirror_bucket = "uploads"\nmirror_part_size = 16777216\n'
        f'mirror_secret_access_key_file = "{secret_file}"\n'
    )
    env = {
        **BASE,
        "SHARDGATE_GATEWAY_MIRROR_ENDPOINT": "http://127.0.0.1:8333",
        "SHARDGATE_GATEWAY_MIRROR_IN_GATEWAY": "false",
        "SHARDGATE_MIRROR_ACCESS_KEY_ID": "AKIA-test",
    }
    config = load_gateway_config(toml, env, REQUIRED)
    assert config.mirror_bucket == "uploads" and config.mirror_part_size == 16 * MiB
    assert config.mirror_endpoint == "http://127.0.0.1:8333" and not config.mirror_in_gateway
    assert config.mirror_access_key_id == "AKIA-test"
    assert config.mirror_secret_access_key == "from-a-file"
    assert "AKIA-test" not in repr(config) and "from-a-file" not in repr(config)


def test_credentials_written_in_the_toml_itself_are_not_taken(tmp_path: Path) -> None:
    toml = tmp_path / "g.toml"
    toml.write_text('[gateway]\nmirror_secret_access_key = "in-plain-sight"\n')
    assert load_gateway_config(toml, BASE, REQUIRED).mirror_secret_access_key == ""


@pytest.mark.parametrize(
    "change", [{"mirror_part_size": MiB}, {"mirror_workers": 0}, {"mirror_max_attempts": 0}]
)
def test_settings_s3_or_the_queue_would_refuse_are_refused_at_start(
    change: dict[str, int],
) -> None:
    config = dataclasses.replace(load_gateway_config(None, BASE, REQUIRED), **change)
    with pytest.raises(ConfigError):
        check_mirror_config(config)
