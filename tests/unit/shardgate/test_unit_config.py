"""shardgate.config: defaults < TOML < environment < overrides; secrets only from env or files."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from shardgate.config import (
    ConfigError,
    GatewayConfig,
    MiB,
    NodeConfig,
    load_gateway_config,
    load_node_config,
)

SECRET_ENV = {"SHARDGATE_CLUSTER_SECRET": "cluster-s3cret"}
GATEWAY_ENV = {**SECRET_ENV, "SHARDGATE_ADMIN_KEY": "admin-key-123"}
NODE_REQUIRED: dict[str, Any] = {"node_id": "n1", "data_dir": "/srv/n1"}
GATEWAY_REQUIRED: dict[str, Any] = {"data_dir": "/srv/gw", "ring_file": "/etc/ring.toml"}


def write_toml(tmp_path: Path, text: str, name: str = "shardgate.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def node(
    path: Path | None = None, env: Mapping[str, str] | None = None, **overrides: Any
) -> NodeConfig:
    return load_node_config(path, SECRET_ENV if env is None else env, overrides)


def gateway(
    path: Path | None = None, env: Mapping[str, str] | None = None, **overrides: Any
) -> GatewayConfig:
    return load_gateway_config(path, GATEWAY_ENV if env is None else env, overrides)


def test_node_defaults_fill_what_is_not_given() -> None:
    config = node(**NODE_REQUIRED)
    assert config.node_id == "n1"
    assert config.data_dir == Path("/srv/n1")
    assert config.cluster_secret == b"cluster-s3cret"
    assert (config.host, config.port, config.chunk_size) == ("127.0.0.1", 0, 1024 * 1024)
    assert config.fsync is True
    assert config.signature_max_skew == 300.0


def test_precedence_defaults_toml_env_overrides(tmp_path: Path) -> None:
    path = write_toml(tmp_path, '[node]\nnode_id = "n1"\ndata_dir = "/d"\nport = 1001\n')
    env = {**SECRET_ENV, "SHARDGATE_NODE_PORT": "1002"}
    assert node(path, env={**SECRET_ENV}).port == 1001
    assert node(path, env=env).port == 1002
    assert node(path, env=env, port=1003).port == 1003
    # A None override means "flag not given" and must not hide the environment.
    assert node(path, env=env, port=None).port == 1002


def test_environment_values_are_coerced_to_field_types(tmp_path: Path) -> None:
    env = {
        **GATEWAY_ENV,
        "SHARDGATE_GATEWAY_DATA_DIR": str(tmp_path),
        "SHARDGATE_GATEWAY_RING_FILE": str(tmp_path / "ring.toml"),
        "SHARDGATE_GATEWAY_WRITE_QUORUM": "3",
        "SHARDGATE_GATEWAY_NODE_IO_TIMEOUT": "2.5",
        "SHARDGATE_GATEWAY_LOG_JSON": "on",
        "SHARDGATE_GATEWAY_MAX_OBJECT_SIZE": str(64 * MiB),
    }
    config = gateway(env=env)
    assert config.data_dir == tmp_path
    assert config.write_quorum == 3
    assert config.node_io_timeout == 2.5
    assert config.log_json is True
    assert config.max_object_size == 64 * MiB
    assert config.catalog_path == tmp_path / "catalog.sqlite3"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("1", True), ("true", True), ("YES", True), ("off", False), ("0", False), ("No", False)],
)
def test_bool_spellings_from_environment(raw: str, expected: bool) -> None:
    env = {**SECRET_ENV, "SHARDGATE_NODE_FSYNC": raw}
    assert node(env=env, **NODE_REQUIRED).fsync is expected


@pytest.mark.parametrize(
    ("var", "raw", "field"),
    [
        ("SHARDGATE_NODE_FSYNC", "maybe", "node.fsync"),
        ("SHARDGATE_NODE_PORT", "eighty", "node.port"),
        ("SHARDGATE_NODE_SIGNATURE_MAX_SKEW", "5m", "node.signature_max_skew"),
    ],
)
def test_wrong_kind_of_value_names_the_field(var: str, raw: str, field: str) -> None:
    with pytest.raises(ConfigError) as err:
        node(env={**SECRET_ENV, var: raw}, **NODE_REQUIRED)
    assert field in str(err.value)
    assert repr(raw) in str(err.value)


def test_missing_required_field_says_how_to_set_it() -> None:
    with pytest.raises(ConfigError) as err:
        node(data_dir="/d")
    assert "node.node_id is required" in str(err.value)
    assert "SHARDGATE_NODE_NODE_ID" in str(err.value)


def test_unknown_toml_setting_is_refused(tmp_path: Path) -> None:
    path = write_toml(tmp_path, "[node]\nprot = 80\n")
    with pytest.raises(ConfigError, match=r"unknown settings \['prot'\]"):
        node(path, **NODE_REQUIRED)


def test_missing_toml_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        node(tmp_path / "absent.toml", **NODE_REQUIRED)


def test_malformed_toml_file(tmp_path: Path) -> None:
    path = write_toml(tmp_path, "[node\nport = ")
    with pytest.raises(ConfigError, match=str(path)):
        node(path, **NODE_REQUIRED)


@pytest.mark.parametrize("kind", ["not-utf8", "directory"])
def test_unreadable_toml_file_is_a_config_error(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "bad.toml"
    if kind == "directory":
        path.mkdir()
    else:
        path.write_bytes(b'[node]\nnode_id = "\xff\xfe"\n')
    with pytest.raises(ConfigError):
        node(path, **NODE_REQUIRED)


@pytest.mark.parametrize("line", ["port = 80.9", "chunk_size = true"])
def test_toml_value_of_wrong_type_is_refused(tmp_path: Path, line: str) -> None:
    path = write_toml(tmp_path, f"[node]\n{line}\n")
    with pytest.raises(ConfigError):
        node(path, **NODE_REQUIRED)


def test_secret_missing_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="cluster secret missing"):
        node(env={}, **NODE_REQUIRED)


def test_secret_in_toml_itself_is_never_used(tmp_path: Path) -> None:
    path = write_toml(
        tmp_path, '[node]\ncluster_secret = "from-toml"\n[cluster]\ncluster_secret = "x"\n'
    )
    with pytest.raises(ConfigError, match="cluster secret missing"):
        node(path, env={}, **NODE_REQUIRED)
    assert node(path, **NODE_REQUIRED).cluster_secret == b"cluster-s3cret"


def test_secret_from_file_named_by_env_is_stripped(tmp_path: Path) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_text("from-file\n")
    config = node(env={"SHARDGATE_CLUSTER_SECRET_FILE": str(secret_file)}, **NODE_REQUIRED)
    assert config.cluster_secret == b"from-file"


def test_secret_from_file_named_in_cluster_section(tmp_path: Path) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_text("via-toml-file")
    path = write_toml(tmp_path, f'[cluster]\ncluster_secret_file = "{secret_file}"\n')
    assert node(path, env={}, **NODE_REQUIRED).cluster_secret == b"via-toml-file"


def test_env_secret_beats_secret_file(tmp_path: Path) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_text("from-file")
    env = {**SECRET_ENV, "SHARDGATE_CLUSTER_SECRET_FILE": str(secret_file)}
    assert node(env=env, **NODE_REQUIRED).cluster_secret == b"cluster-s3cret"


def test_unreadable_secret_file_names_it(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(ConfigError, match="cluster_secret: cannot read"):
        node(env={"SHARDGATE_CLUSTER_SECRET_FILE": str(missing)}, **NODE_REQUIRED)


def test_node_section_secret_file_is_honoured(tmp_path: Path) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_text("node-file")
    path = write_toml(
        tmp_path,
        f'[node]\nnode_id = "n1"\ndata_dir = "/d"\ncluster_secret_file = "{secret_file}"\n',
    )
    assert node(path, env={}).cluster_secret == b"node-file"


def test_secrets_do_not_appear_in_repr() -> None:
    assert "cluster-s3cret" not in repr(node(**NODE_REQUIRED))
    config = gateway(**GATEWAY_REQUIRED)
    assert "cluster-s3cret" not in repr(config)
    assert config.admin_key_sha256 not in repr(config)


def test_admin_key_is_kept_only_as_sha256() -> None:
    config = gateway(**GATEWAY_REQUIRED)
    assert config.admin_key_sha256 == hashlib.sha256(b"admin-key-123").hexdigest()
    values = [str(v) for v in dataclasses.astuple(config)]
    assert not any("admin-key-123" in v for v in values)


def test_admin_key_from_gateway_section_file(tmp_path: Path) -> None:
    key_file = tmp_path / "admin"
    key_file.write_text("filed-admin\n")
    path = write_toml(tmp_path, f'[gateway]\nadmin_key_file = "{key_file}"\n')
    config = gateway(path, env=SECRET_ENV, **GATEWAY_REQUIRED)
    assert config.admin_key_sha256 == hashlib.sha256(b"filed-admin").hexdigest()


def test_gateway_without_admin_key_is_refused() -> None:
    with pytest.raises(ConfigError, match="admin API key missing"):
        gateway(env=SECRET_ENV, **GATEWAY_REQUIRED)


def test_gateway_write_quorum_must_be_positive() -> None:
    with pytest.raises(ConfigError, match="write_quorum"):
        gateway(write_quorum=0, **GATEWAY_REQUIRED)


def test_gateway_late_replica_writes_may_be_zero_but_not_negative() -> None:
    assert gateway(late_replica_writes=0, **GATEWAY_REQUIRED).late_replica_writes == 0
    with pytest.raises(ConfigError, match="late_replica_writes"):
        gateway(late_replica_writes=-1, **GATEWAY_REQUIRED)


def test_config_is_frozen() -> None:
    config = node(**NODE_REQUIRED)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.port = 1  # type: ignore[misc]
