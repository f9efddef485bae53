"""The narrow seam between the mirror and an S3 service: only the calls the mirror makes.

Every method blocks (boto3 does), so callers run them in the mirror's bounded thread pool,
never on the event loop. Failures of the service are raised as SinkError.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol


class SinkError(Exception):
    """The S3 service refused a call or could not be reached."""


@dataclass(frozen=True)
class Stored:
    """What the service says it holds under a key."""

    size: int
    etag: str  # unquoted
    metadata: Mapping[str, str] = field(default_factory=dict)


class Sink(Protocol):
    def url(self, key: str) -> str: ...

    def put(self, key: str, data: bytes, md5: bytes, metadata: Mapping[str, str]) -> str:
        """Store `data` whole (the service checks it against `md5`); returns its ETag."""

    def start_multipart(self, key: str, metadata: Mapping[str, str]) -> str:
        """Begin a multipart upload; returns its upload id."""

    def put_part(self, key: str, upload_id: str, number: int, data: bytes, md5: bytes) -> str: ...

    def complete_multipart(self, key: str, upload_id: str, etags: Sequence[str]) -> str:
        """Join parts 1..n (their ETags in order) into the object; returns its ETag."""

    def abort_multipart(self, key: str, upload_id: str) -> None: ...

    def head(self, key: str) -> Stored | None: ...

    def delete(self, key: str) -> None:
        """Remove the key; removing a key that is not there is not an error."""
