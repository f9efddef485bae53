"""A count of bytes a node may hold at once for one purpose; past it, callers take another road."""

from __future__ import annotations


class ByteBudget:
    """Non-blocking: `take` says no at once rather than queueing, since the caller has a
    fallback that needs no budget."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.held = 0

    def take(self, size: int) -> bool:
        if self.held + size > self.limit:
            return False
        self.held += size
        return True

    def give(self, size: int) -> None:
        self.held -= size
