"""Errors a storage node answers with; each knows its status and code."""

from __future__ import annotations

from shardgate.errors import ShardgateError


class NodeError(ShardgateError):
    """Base of every storage node error."""


class BadRequest(NodeError):
    status = 400
    code = "BadRequest"


class Unauthorized(NodeError):
    status = 401
    code = "Unauthorized"


class NotFound(NodeError):
    status = 404
    code = "NoSuchKey"


class Superseded(NodeError):
    """A newer version or tombstone is already stored; last writer wins, so this one is dropped."""

    status = 409
    code = "Superseded"

    def __init__(self, newest: str):
        super().__init__(f"a newer version {newest} is already stored", newest=newest)
        self.newest = newest


class PreconditionFailed(NodeError):
    status = 412
    code = "PreconditionFailed"


class RangeNotSatisfiable(NodeError):
    status = 416
    code = "InvalidRange"


class EntityTooLarge(NodeError):
    status = 413
    code = "EntityTooLarge"


class UnsupportedMediaType(NodeError):
    status = 415
    code = "UnsupportedMediaType"


class UploadIdUsed(NodeError):
    status = 409
    code = "UploadIdUsed"


class NoSuchUpload(NodeError):
    status = 404
    code = "NoSuchUpload"


class BadDigest(NodeError):
    status = 400
    code = "BadDigest"


class CorsForbidden(NodeError):
    status = 403
    code = "CORSForbidden"


class IncompleteBody(NodeError):
    status = 400
    code = "IncompleteBody"


class InsufficientStorage(NodeError):
    status = 507
    code = "InsufficientStorage"


class PeerUnreachable(NodeError):
    status = 502
    code = "PeerUnreachable"


class ReplicaCorrupt(NodeError):
    """This node's copy failed its checksum: another replica must serve (and replace) it."""

    status = 503
    code = "ReplicaCorrupt"
