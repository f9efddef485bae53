"""One frozen config per service, loaded once: defaults < TOML file < environment < CLI flags.

Secrets never come from the TOML file itself, only from the environment or from files it names.
"""

from __future__ import annotations

import dataclasses
import hashlib
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, get_type_hints

from shardgate.tokens import derived_key, parse_keys

ENV_PREFIX = "SHARDGATE_"
KiB = 1024
MiB = 1024 * KiB
TiB = 1024 * 1024 * MiB


class ConfigError(Exception):
    """The configuration is missing something or holds a value of the wrong kind."""


@dataclass(frozen=True)
class NodeConfig:
    """A storage node: one process per data directory."""

    node_id: str
    data_dir: Path
    cluster_secret: bytes = field(repr=False)
    token_keys: Mapping[str, bytes] = field(repr=False, default_factory=dict)
    host: str = "127.0.0.1"
    port: int = 0
    # One disk-thread hop, and one hand-off to each early copy, per chunk: a 1 MiB chunk costs
    # a quarter of the hops of 256 KiB on large objects, for at most a few MiB per upload.
    chunk_size: int = 1 * MiB
    fsync: bool = True
    signature_max_skew: float = 300.0
    body_idle_timeout: float = 60.0
    copy_stall_timeout: float = 10.0  # an early copy's peer that takes no data this long is dropped
    io_threads: int = 32
    # Versions of one block (1 MiB) are served from memory, which a slow reader holds (with the
    # transport's copy: each counts twice): past this much, reads go by sendfile and hold nothing.
    inline_read_bytes: int = 64 * MiB
    # TCP_NOTSENT_LOWAT of a presigned GET's socket while sendfile sends it; 0 leaves the
    # kernel's. It bounds only what waits unsent, not what is in flight: long links keep pace.
    notsent_lowat_bytes: int = 128 * KiB
    sweep_interval: float = 600.0  # 0 turns the periodic sweep off (`shardgate sweep` still runs)
    sweep_grace: float = 3600.0  # debris younger than this is left alone
    tombstone_reclaim_age: float = 7 * 86400.0  # longer than any node stays down unrepaired
    ring_file: str = ""  # without one the node stores and serves but does not replicate
    replicate_interval: float = 300.0  # the safety net; missed writes come back via repairs (10 s)
    scrub_interval: float = 86400.0  # a pass re-reading everything starts this often; 0: never
    scrub_rate: float = 20.0 * MiB  # bytes a second the scrubber may read
    log_level: str = "INFO"
    log_json: bool = False
    access_log: bool = True
    metrics_interval: float = 15.0  # disk free/total gauges
    inventory_interval: float = 300.0  # object counts: lists every object directory


@dataclass(frozen=True)
class GatewayConfig:
    """The public gateway: API, catalog, placement and fan-out."""

    data_dir: Path
    ring_file: Path
    cluster_secret: bytes = field(repr=False)
    admin_key_sha256: str = field(repr=False)
    token_keys: Mapping[str, bytes] = field(repr=False, default_factory=dict)
    token_kid: str = ""
    token_lifetime: float = 900.0
    token_max_lifetime: float = 7 * 86400.0
    pending_grace: float = 3600.0
    min_part_size: int = 5 * MiB
    upload_lifetime: float = 24 * 3600.0
    upload_expiry_interval: float = 60.0
    sweep_interval: float = 3600.0  # orphan replicas: nodes ask the catalog through this sweep
    repair_interval: float = 10.0  # replicas that missed a write get it pushed; 0 turns it off
    host: str = "127.0.0.1"
    port: int = 8080
    write_quorum: int = 2
    # Replica writes that may finish after their upload is answered at the quorum; 0: every
    # upload waits for all its replicas.
    late_replica_writes: int = 64
    chunk_size: int = 256 * KiB
    max_object_size: int = 5 * TiB
    node_connect_timeout: float = 2.0
    node_io_timeout: float = 30.0
    health_interval: float = 1.0
    node_down_backoff: float = 5.0
    body_idle_timeout: float = 30.0
    upload_limit: int = 128
    download_limit: int = 512
    other_limit: int = 512
    key_upload_limit: int = 64
    key_download_limit: int = 256
    key_other_limit: int = 256
    api_key_cache_seconds: float = 2.0
    log_level: str = "INFO"
    log_json: bool = False
    access_log: bool = True
    metrics_interval: float = 10.0  # gauges read from the catalog (repair queue depth)
    # The S3 mirror (cloud_sync); off until mirror_bucket names the target bucket.
    mirror_endpoint: str = ""  # any S3-compatible service; empty: AWS's own endpoints
    mirror_region: str = "us-east-1"
    mirror_bucket: str = ""
    mirror_prefix: str = ""
    mirror_in_gateway: bool = True  # False: run workers with `shardgate mirror run`
    mirror_workers: int = 4
    mirror_threads: int = 8
    mirror_lease: float = 60.0
    mirror_poll_interval: float = 1.0
    mirror_max_attempts: int = 8
    mirror_backoff_base: float = 1.0
    mirror_backoff_cap: float = 300.0
    mirror_multipart_threshold: int = 16 * MiB
    mirror_part_size: int = 8 * MiB
    mirror_s3_timeout: float = 60.0
    # Empty: boto3's usual chain (AWS_* environment, shared files, instance roles).
    mirror_access_key_id: str = field(repr=False, default="")
    mirror_secret_access_key: str = field(repr=False, default="")

    @property
    def catalog_path(self) -> Path:
        return self.data_dir / "catalog.sqlite3"


_SECRET_FIELDS = {
    "cluster_secret",
    "admin_key_sha256",
    "token_keys",
    "mirror_access_key_id",
    "mirror_secret_access_key",
}
# SHARDGATE_MIRROR_ACCESS_KEY_ID and SHARDGATE_MIRROR_SECRET_ACCESS_KEY (or their _FILE forms).
_MIRROR_SECRETS = ("mirror_access_key_id", "mirror_secret_access_key")
C = TypeVar("C", NodeConfig, GatewayConfig)


def _coerce(name: str, kind: Any, raw: Any) -> Any:
    try:
        if kind is bool:
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text not in {"1", "0", "true", "false", "yes", "no", "on", "off"}:
                raise ValueError(raw)
            return text in {"1", "true", "yes", "on"}
        if kind is Path:
            return Path(raw)
        if kind in (int, float) and (
            isinstance(raw, bool) or (kind is int and isinstance(raw, float))
        ):
            raise ValueError(raw)
        return kind(raw)
    except (TypeError, ValueError):
        raise ConfigError(f"{name}: expected {kind.__name__}, got {raw!r}") from None


def _read_toml(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"config file {path}: {exc}") from None


def _secret(name: str, env: Mapping[str, str], files: Mapping[str, Any]) -> str | None:
    """A secret from SHARDGATE_<NAME>, or from the file named by <NAME>_FILE or `<name>_file`."""
    env_name = f"{ENV_PREFIX}{name.upper()}"
    if env.get(env_name):
        return env[env_name]
    file_name = env.get(f"{env_name}_FILE") or files.get(f"{name}_file")
    if not file_name:
        return None
    try:
        return Path(file_name).read_text().strip()
    except OSError as exc:
        raise ConfigError(f"{name}: cannot read {file_name}: {exc.strerror}") from None


def _build(
    cls: type[C],
    section: str,
    path: Path | None,
    env: Mapping[str, str],
    overrides: Mapping[str, Any],
    secrets: Mapping[str, Any],
) -> C:
    document = _read_toml(path)
    values: dict[str, Any] = dict(document.get(section, {}))
    hints = get_type_hints(cls)
    secret_files = {"cluster_secret_file", "token_keys_file"}
    if section == "gateway":
        secret_files |= {"admin_key_file", *(f"{name}_file" for name in _MIRROR_SECRETS)}
    unknown = set(values) - set(hints) - secret_files
    if unknown:
        raise ConfigError(f"[{section}]: unknown settings {sorted(unknown)}")
    prefix = f"{ENV_PREFIX}{section.upper()}_"
    for name in hints:
        if name in _SECRET_FIELDS:
            continue
        if prefix + name.upper() in env:
            values[name] = env[prefix + name.upper()]
        if overrides.get(name) is not None:
            values[name] = overrides[name]
    kwargs: dict[str, Any] = dict(secrets)
    for f in dataclasses.fields(cls):
        if f.name in _SECRET_FIELDS:
            continue
        if f.name in values:
            kwargs[f.name] = _coerce(f"{section}.{f.name}", hints[f.name], values[f.name])
        elif f.default is dataclasses.MISSING:
            raise ConfigError(
                f"{section}.{f.name} is required (TOML, {prefix}{f.name.upper()} or a flag)"
            )
    return cls(**kwargs)


def load_node_config(
    path: Path | None, env: Mapping[str, str], overrides: Mapping[str, Any] | None = None
) -> NodeConfig:
    """Load and validate a node's config."""
    document = _read_toml(path)
    files = {**document.get("cluster", {}), **document.get("node", {})}
    secret = _secret("cluster_secret", env, files)
    if not secret:
        raise ConfigError("cluster secret missing: set SHARDGATE_CLUSTER_SECRET(_FILE)")
    secrets = {"cluster_secret": secret.encode(), "token_keys": _token_keys(env, files, secret)}
    return _build(NodeConfig, "node", path, env, overrides or {}, secrets)


def load_gateway_config(
    path: Path | None, env: Mapping[str, str], overrides: Mapping[str, Any] | None = None
) -> GatewayConfig:
    """Load and validate the gateway's config; the admin key is kept only as its sha256."""
    document = _read_toml(path)
    files = {**document.get("cluster", {}), **document.get("gateway", {})}
    secret = _secret("cluster_secret", env, files)
    admin_key = _secret("admin_key", env, files)
    if not secret:
        raise ConfigError("cluster secret missing: set SHARDGATE_CLUSTER_SECRET(_FILE)")
    if not admin_key:
        raise ConfigError("admin API key missing: set SHARDGATE_ADMIN_KEY(_FILE)")
    config = _build(
        GatewayConfig,
        "gateway",
        path,
        env,
        overrides or {},
        {
            "cluster_secret": secret.encode(),
            "admin_key_sha256": hash_api_key(admin_key),
            "token_keys": _token_keys(env, files, secret),
            **{name: _secret(name, env, files) or "" for name in _MIRROR_SECRETS},
        },
    )
    if config.write_quorum < 1:
        raise ConfigError("gateway.write_quorum must be at least 1")
    if config.late_replica_writes < 0:
        raise ConfigError("gateway.late_replica_writes must be 0 or more")
    if config.token_kid and config.token_kid not in config.token_keys:
        raise ConfigError(f"gateway.token_kid {config.token_kid!r} is not among the token keys")
    return config


def _token_keys(
    env: Mapping[str, str], files: Mapping[str, Any], cluster_secret: str
) -> dict[str, bytes]:
    """Upload-token keys as kid=secret pairs (rotation: list the new and the old one)."""
    text = _secret("token_keys", env, files)
    if not text:
        return derived_key(cluster_secret.encode())
    try:
        return parse_keys(text)
    except ValueError as exc:
        raise ConfigError(f"token keys: {exc}") from None


def signing_kid(config: GatewayConfig) -> str:
    """The key id new tokens are signed with: the configured one, else the last listed."""
    return config.token_kid or list(config.token_keys)[-1]


def hash_api_key(key: str) -> str:
    """API keys are stored and compared only as sha256 (they are random, so no salt is needed)."""
    return hashlib.sha256(key.encode()).hexdigest()
