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


class NoSuchApiKey(GatewayError):
    status = 404
    code = "NoSuchApiKey"


class BucketNotEmpty(GatewayError):
    status = 409
    code = "BucketNotEmpty"


class MalformedPost(GatewayError):
    status = 400
    code = "MalformedPOSTRequest"


class InvalidDigest(GatewayError):
    status = 400
    code = "InvalidDigest"


class BadDigest(GatewayError):
    status = 400
    code = "BadDigest"


class CorsForbidden(GatewayError):
    status = 403
    code = "CORSForbidden"


class InvalidPart(GatewayError):
    status = 400
    code = "InvalidPart"


class InvalidPartOrder(GatewayError):
    status = 400
    code = "InvalidPartOrder"


class EntityTooSmall(GatewayError):
    status = 400
    code = "EntityTooSmall"


class NoSuchUpload(GatewayError):
    status = 404
    code = "NoSuchUpload"


class UploadConflict(GatewayError):
    """The upload was committed already (and since replaced), or its commit window passed."""

    status = 409
    code = "UploadConflict"


class IncompleteBody(GatewayError):
    status = 400
    code = "IncompleteBody"


class MissingContentLength(GatewayError):
    status = 411
    code = "MissingContentLength"


class PreconditionFailed(GatewayError):
    status = 412
    code = "PreconditionFailed"


class EntityTooLarge(GatewayError):
    status = 413
    code = "EntityTooLarge"


class UnsupportedMediaType(GatewayError):
    status = 415
    code = "UnsupportedMediaType"


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


class GatewayBusy(ServiceUnavailable):
    """The gateway-wide limit for this kind of request is reached."""


class KeyBusy(GatewayError):
    """This API key's own limit is reached; other keys proceed."""

    status = 429
    code = "SlowDown"

    def __init__(self, message: str) -> None:
        super().__init__(message, headers={"Retry-After": "1"})


class InsufficientStorage(GatewayError):
    status = 507
    code = "InsufficientStorage"
