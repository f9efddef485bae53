"""Every error the gateway answers with, each knowing its status and code (rendered by
shardgate.web.error_middleware as DESIGN.md's JSON body)."""

from __future__ import annotations

from shardgate.errors import ShardgateError


class GatewayError(ShardgateError):
    """Base of every gateway error."""


class InvalidArgument(GatewayError):
    status = 400
    code = "InvalidArgument"


class InvalidBucketName(GatewayError):
    status = 400
    code = "InvalidBucketName"


class InvalidKey(GatewayError):
    status = 400
    code = "InvalidObjectName"


class Unauthorized(GatewayError):
    status = 401
    code = "Unauthorized"

    def __init__(self, message: str) -> None:
        super().__init__(message, headers={"WWW-Authenticate": 'Bearer realm="shardgate"'})


class AccessDenied(GatewayError):
    status = 403
    code = "AccessDenied"


class NoSuchBucket(GatewayError):
    status = 404
    code = "NoSuchBucket"


class NoSuchKey(GatewayError):
    status = 404
    code = "NoSuchKey"


class MissingContentLength(GatewayError):
    status = 411
    code = "MissingContentLength"


class PreconditionFailed(GatewayError):
    status = 412
    code = "PreconditionFailed"


class EntityTooLarge(GatewayError):
    status = 413
    code = "EntityTooLarge"


class InvalidRange(GatewayError):
    status = 416
    code = "InvalidRange"


class ReplicaMismatch(GatewayError):
    """Replicas computed different checksums for one stream: the bytes were damaged in transit."""

    status = 502
    code = "ReplicaMismatch"


class ServiceUnavailable(GatewayError):
    status = 503
    code = "ServiceUnavailable"

    def __init__(self, message: str, retry_after: int = 1) -> None:
        super().__init__(message, headers={"Retry-After": str(retry_after)})


class QuorumNotReached(ServiceUnavailable):
    code = "InsufficientReplicas"


class InsufficientStorage(GatewayError):
    status = 507
    code = "InsufficientStorage"
