"""Code shared by the gateway, the storage node and the CLI: config, signing, versions, errors."""

from shardgate.config import (
    ConfigError,
    GatewayConfig,
    NodeConfig,
    load_gateway_config,
    load_node_config,
)
from shardgate.errors import ShardgateError
from shardgate.signing import SignatureError, sign_request, verify_request
from shardgate.versions import VersionClock, version_to_timestamp

__all__ = [
    "ConfigError",
    "GatewayConfig",
    "NodeConfig",
    "ShardgateError",
    "SignatureError",
    "VersionClock",
    "load_gateway_config",
    "load_node_config",
    "sign_request",
    "verify_request",
    "version_to_timestamp",
]
