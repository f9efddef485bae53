"""Who is calling and what they may do: principals from bearer API keys, rights per bucket.

Keys are stored as sha256 only. The config's admin key never touches the catalog; catalog keys
are looked up by hash and cached briefly, so a revocation takes effect within the cache time.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass

from gateway.catalog import ApiKeyRecord, Catalog
from gateway.errors import AccessDenied, InvalidArgument, NoSuchApiKey, Unauthorized
from shardgate.config import hash_api_key

RIGHTS = ("read", "write", "admin")
KEY_PREFIX = "sg_"


@dataclass(frozen=True)
class Principal:
    key_id: str
    rights: frozenset[str]
    buckets: frozenset[str] | None = None  # None: every bucket

    @property
    def anonymous(self) -> bool:
        return self.key_id == ANONYMOUS.key_id

    def may(self, right: str, bucket: str | None = None) -> bool:
        """A key limited to some buckets holds no right outside them, nor any cluster-wide one."""
        if self.buckets is not None and (bucket is None or bucket not in self.buckets):
            return False
        return "admin" in self.rights or right in self.rights

    def require(self, right: str, bucket: str | None = None) -> None:
        if self.may(right, bucket):
            return
        if self.anonymous:
            raise Unauthorized("an API key is required: send 'Authorization: Bearer <key>'")
        where = f" on bucket {bucket!r}" if bucket else ""
        raise AccessDenied(f"API key {self.key_id!r} lacks the {right} right{where}")


ANONYMOUS = Principal("anonymous", frozenset())
ADMIN = Principal("admin", frozenset({"admin"}))


class ApiKeys:
    def __init__(self, catalog: Catalog, admin_key_sha256: str, *, cache_seconds: float) -> None:
        self._catalog = catalog
        self._admin = admin_key_sha256
        self._ttl = cache_seconds
        self._cache: dict[str, tuple[float, ApiKeyRecord | None]] = {}

    async def authenticate(self, token: str) -> Principal:
        digest = hash_api_key(token)
        if hmac.compare_digest(digest, self._admin):
            return ADMIN
        now = time.monotonic()
        cached = self._cache.get(digest)
        if cached is None or cached[0] < now:
            record = await self._catalog.find_api_key(digest)
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[digest] = (now + self._ttl, record)
        else:
            record = cached[1]
        if record is None or record.revoked is not None:
            raise Unauthorized("the API key is not valid")
        buckets = None if record.buckets is None else frozenset(record.buckets)
        return Principal(record.id, frozenset(record.rights), buckets)

    async def create(
        self, name: str, rights: Sequence[str], buckets: Sequence[str] | None
    ) -> tuple[ApiKeyRecord, str]:
        """A new key; the secret is returned once and only its hash is kept."""
        unknown = set(rights) - set(RIGHTS)
        if not rights or unknown:
            raise InvalidArgument(f"rights must be a non-empty subset of {list(RIGHTS)}")
        secret = KEY_PREFIX + secrets.token_urlsafe(32)
        record = ApiKeyRecord(
            id=secrets.token_hex(6),
            name=name,
            sha256=hash_api_key(secret),
            rights=tuple(sorted(set(rights))),
            buckets=None if buckets is None else tuple(sorted(set(buckets))),
            created=time.time(),
        )
        await self._catalog.add_api_key(record)
        return record, secret

    async def revoke(self, key_id: str) -> None:
        if not await self._catalog.revoke_api_key(key_id, time.time()):
            raise NoSuchApiKey(f"no active API key with id {key_id!r}")
        self._cache.clear()

    async def list(self) -> list[ApiKeyRecord]:
        return await self._catalog.list_api_keys()
