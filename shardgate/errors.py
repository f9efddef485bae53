"""The root of every error a shardgate service turns into an HTTP answer."""

from __future__ import annotations

from typing import Any, ClassVar


class ShardgateError(Exception):
    """An error that knows its HTTP status and machine-readable code."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "InternalError"

    def __init__(self, message: str, *, headers: dict[str, str] | None = None, **extra: Any):
        super().__init__(message)
        self.message = message
        self.headers = headers or {}
        self.extra = extra

    def body(self) -> dict[str, Any]:
        """The JSON body DESIGN.md defines: {"error": {"code", "message", ...}}."""
        return {"error": {"code": self.code, "message": self.message, **self.extra}}
