"""An in-memory Sink for tests: S3's answers (ETags, multipart ETags, Content-MD5 checks)
without a server, and a switch that makes every call fail as an unreachable service would."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Mapping, Sequence

from cloud_sync.sink import SinkError, Stored


class MemorySink:
    def __init__(self) -> None:
        self.objects: dict[str, tuple[bytes, Stored]] = {}
        self.failing: str | None = None  # when set, every call raises SinkError with it
        self.calls: list[tuple[str, str]] = []  # (operation, key), in order
        self._uploads: dict[str, tuple[str, Mapping[str, str], dict[int, bytes]]] = {}
        self._lock = threading.Lock()
        self._next_upload = 0

    def _call(self, operation: str, key: str) -> None:
        with self._lock:
            self.calls.append((operation, key))
        if self.failing is not None:
            raise SinkError(self.failing)

    def url(self, key: str) -> str:
        return f"memory://{key}"

    def put(self, key: str, data: bytes, md5: bytes, metadata: Mapping[str, str]) -> str:
        self._call("put", key)
        digest = hashlib.md5(data, usedforsecurity=False)
        if digest.digest() != md5:
            raise SinkError("BadDigest: Content-MD5 does not match the body")
        stored = Stored(len(data), digest.hexdigest(), dict(metadata))
        with self._lock:
            self.objects[key] = (data, stored)
        return stored.etag

    def start_multipart(self, key: str, metadata: Mapping[str, str]) -> str:
        self._call("start_multipart", key)
        with self._lock:
            self._next_upload += 1
            upload_id = f"u{self._next_upload}"
            self._uploads[upload_id] = (key, dict(metadata), {})
        return upload_id

    def put_part(self, key: str, upload_id: str, number: int, data: bytes, md5: bytes) -> str:
        self._call("put_part", key)
        if hashlib.md5(data, usedforsecurity=False).digest() != md5:
            raise SinkError("BadDigest: Content-MD5 does not match the part")
        with self._lock:
            self._uploads[upload_id][2][number] = data
        return hashlib.md5(data, usedforsecurity=False).hexdigest()

    def complete_multipart(self, key: str, upload_id: str, etags: Sequence[str]) -> str:
        self._call("complete_multipart", key)
        with self._lock:
            _, metadata, parts = self._uploads.pop(upload_id)
        ordered = [parts[n] for n in range(1, len(etags) + 1)]
        joined = hashlib.md5(
            b"".join(hashlib.md5(p, usedforsecurity=False).digest() for p in ordered),
            usedforsecurity=False,
        )
        data = b"".join(ordered)
        stored = Stored(len(data), f"{joined.hexdigest()}-{len(ordered)}", dict(metadata))
        with self._lock:
            self.objects[key] = (data, stored)
        return stored.etag

    def abort_multipart(self, key: str, upload_id: str) -> None:
        self._call("abort_multipart", key)
        with self._lock:
            self._uploads.pop(upload_id, None)

    def head(self, key: str) -> Stored | None:
        self._call("head", key)
        with self._lock:
            found = self.objects.get(key)
        return found[1] if found else None

    def delete(self, key: str) -> None:
        self._call("delete", key)
        with self._lock:
            self.objects.pop(key, None)

    def data(self, key: str) -> bytes:
        return self.objects[key][0]
