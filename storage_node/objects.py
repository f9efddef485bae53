"""Object resource on a node: stream a version in, serve it by sendfile, tombstone or discard it."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterable, Callable

from aiohttp import hdrs, web
from multidict import CIMultiDict

from ring import object_hash
from shardgate.block_sums import BLOCK_SIZE
from shardgate.internal_api import (
    BUCKET_HEADER,
    KEY_HEADER,
    META_PREFIX,
    MIN_VERSION_HEADER,
    TOMBSTONE_HEADER,
    TRAILER_HEADER,
    VERSION_HEADER,
    VOUCHED_BLOCKS_HEADER,
    VOUCHED_ETAG_HEADER,
    decode_key,
    meta_from_headers,
    meta_headers,
)
from shardgate.streams import grouped, network_reads
from shardgate.unsent_limit import limit_unsent
from shardgate.versions import is_version, version_to_timestamp
from shardgate.vouch_trailer import TRAILER_KIND, TRAILER_SIZE, TrailerSplit
from storage_node.blocks import has_checksums
from storage_node.disk import DiskStore
from storage_node.errors import (
    BadDigest,
    BadRequest,
    IncompleteBody,
    NotFound,
    PreconditionFailed,
    RangeNotSatisfiable,
    ReplicaCorrupt,
    Superseded,
)
from storage_node.keys import CONFIG, INLINE_READS, METRICS, QUARANTINE, STORE
from storage_node.records import NewVersion, ObjectMeta, Vouched
from storage_node.store import ObjectWriter
from storage_node.verified import CheckedFile, checked_bytes

log = logging.getLogger(__name__)


def http_date(version: str) -> str:
    return time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(version_to_timestamp(version)))


def _address(request: web.Request) -> tuple[int, str]:
    return int(request.match_info["partition"]), request.match_info["hash"]


def _identity(request: web.Request, obj_hash: str) -> tuple[str, str, str]:
    """bucket, key and version from the headers, checked against the hash in the signed path."""
    try:
        bucket = request.headers[BUCKET_HEADER]
        key = decode_key(request.headers[KEY_HEADER])
        version = request.headers[VERSION_HEADER]
    except (KeyError, UnicodeDecodeError) as exc:
        raise BadRequest(f"missing or malformed object identity header: {exc}") from None
    if not is_version(version):
        raise BadRequest(f"malformed version {version!r}")
    if object_hash(bucket, key) != obj_hash:
        raise BadRequest("bucket and key do not hash to the addressed object")
    return bucket, key, version


async def put_object(request: web.Request) -> web.Response:
    partition, obj_hash = _address(request)
    bucket, key, version = _identity(request, obj_hash)
    new = NewVersion(
        bucket=bucket,
        key=key,
        version=version,
        content_type=request.headers.get(hdrs.CONTENT_TYPE, "application/octet-stream"),
        user_meta=meta_from_headers(request.headers, META_PREFIX),
        create_only=request.headers.get(hdrs.IF_NONE_MATCH) == "*",
    )
    store, metrics = request.app[STORE], request.app[METRICS]
    split = _trailer_split(request)
    writer = await store.create_writer(
        partition, obj_hash, vouched=_vouched(request), md5=split is None
    )
    metrics.writes_in_progress.inc()
    try:
        config = request.app[CONFIG]
        reads = network_reads(request.content, config.body_idle_timeout)
        if split is not None:
            # The trailer comes off the network reads: cut from a joined chunk, it copied the
            # whole last chunk (13% of a node's medium PUT CPU).
            reads = split.strip(reads)
        await write_reads(writer, reads, config.chunk_size, metrics.bytes_received.inc)
        expected = request.content_length
        if split is not None:
            if split.trailer is None:
                raise IncompleteBody("the body ended before its trailer")
            writer.vouch(Vouched(*split.trailer))
            expected = None if expected is None else expected - TRAILER_SIZE
        meta = await writer.commit(new, expected)
    except Superseded:
        metrics.commits.labels("version", "superseded").inc()
        raise
    except BadDigest as exc:
        # Damaged on the wire, or on a peer's disk before it pushed: worth a look at 3 a.m.
        metrics.commits.labels("version", "damaged").inc()
        sender = "the gateway" if split is not None else "a peer"
        log.warning("refused %s/%s version %s from %s: %s", bucket, key, version, sender, exc)
        raise
    finally:
        await writer.abort()
        metrics.writes_in_progress.dec()
    metrics.commits.labels("version", "committed").inc()
    return web.json_response(meta.listing_entry(), status=201)


async def write_reads(
    writer: ObjectWriter, reads: AsyncIterable[bytes], size: int, received: Callable[[int], object]
) -> None:
    """Write a body's network reads in groups of at least `size` bytes, unjoined: joining them,
    and the block sums' slices of a joined chunk, took 14% of a node's CPU in the large PUT."""
    async for group in grouped(reads, size):
        await writer.write(*group)
        received(sum(map(len, group)))


def _trailer_split(request: web.Request) -> TrailerSplit | None:
    """A gateway write vouches for its md5 in the body's last bytes: no md5 pass here then."""
    kind = request.headers.get(TRAILER_HEADER)
    if kind is None:
        return None
    if kind != TRAILER_KIND:
        raise BadRequest(f"unknown {TRAILER_HEADER} {kind!r}; this node knows {TRAILER_KIND!r}")
    return TrailerSplit()


def _vouched(request: web.Request) -> Vouched | None:
    etag = request.headers.get(VOUCHED_ETAG_HEADER)
    digest = request.headers.get(VOUCHED_BLOCKS_HEADER)
    return Vouched(etag, digest) if etag and digest else None


async def current_version(
    request: web.Request, partition: int, obj_hash: str, wanted: str
) -> ObjectMeta:
    """The newest stored version, if it is data and at least as new as `wanted`."""
    return _wanted(await request.app[STORE].newest(partition, obj_hash), wanted)


def _wanted(meta: ObjectMeta | None, wanted: str) -> ObjectMeta:
    """`meta` if it is data and at least as new as `wanted`; else the 404 that says why."""
    if meta is None:
        raise NotFound("no such object on this node")
    if meta.tombstone:
        raise NotFound("object deleted", headers={TOMBSTONE_HEADER: meta.version})
    if meta.version < wanted:
        raise NotFound("this node holds an older version", headers={VERSION_HEADER: meta.version})
    return meta


def _headers(meta: ObjectMeta) -> CIMultiDict[str]:
    headers: CIMultiDict[str] = CIMultiDict(
        {
            hdrs.CONTENT_TYPE: meta.content_type,
            hdrs.ETAG: f'"{meta.etag}"',
            hdrs.LAST_MODIFIED: http_date(meta.version),
            hdrs.ACCEPT_RANGES: "bytes",
            VERSION_HEADER: meta.version,
        }
    )
    headers.update(meta_headers(meta.user_meta, META_PREFIX))
    return headers


def _not_modified(request: web.Request, meta: ObjectMeta) -> bool:
    """Evaluate If-Match / If-None-Match against the stored md5 (RFC 9110 order)."""
    if_match = request.if_match
    if if_match is not None and not any(t.value in ("*", meta.etag) for t in if_match):
        raise PreconditionFailed("If-Match does not match the stored ETag")
    if_none_match = request.if_none_match
    return if_none_match is not None and any(t.value in ("*", meta.etag) for t in if_none_match)


def _wants_range(request: web.Request, meta: ObjectMeta) -> bool:
    """A Range is honoured unless an If-Range names another version (RFC 9110 13.1.5)."""
    if hdrs.RANGE not in request.headers:
        return False
    if_range = request.headers.get(hdrs.IF_RANGE)
    return if_range is None or if_range.strip() == f'"{meta.etag}"'


def _byte_range(request: web.Request, size: int) -> tuple[int, int]:
    """[start, end) of the requested Range, clipped to the object."""
    unsatisfiable = {"Content-Range": f"bytes */{size}"}
    try:
        rng = request.http_range
    except ValueError:
        raise RangeNotSatisfiable("malformed Range header", headers=unsatisfiable) from None
    start, stop = rng.start, rng.stop
    if start is not None and start < 0 and stop is None:
        start = max(size + start, 0)
    start = start or 0
    stop = size if stop is None else min(stop, size)
    if start >= size or start >= stop:
        raise RangeNotSatisfiable("range outside the object", headers=unsatisfiable)
    return start, stop


async def get_object(request: web.Request) -> web.StreamResponse:
    partition, obj_hash = _address(request)
    wanted = request.headers.get(MIN_VERSION_HEADER, "")
    store = request.app[STORE]
    if not isinstance(store, DiskStore):
        meta = await current_version(request, partition, obj_hash, wanted)
        return await serve_version(request, partition, obj_hash, meta, _headers(meta))
    # A HEAD, or a GET that may be answered 304, has no use for the bytes.
    wants_bytes = request.method == hdrs.METH_GET and not (
        hdrs.IF_NONE_MATCH in request.headers or hdrs.IF_MODIFIED_SINCE in request.headers
    )
    limit = BLOCK_SIZE if wants_bytes else 0
    found, read_ahead = await store.newest_and_body(partition, obj_hash, limit)
    meta = _wanted(found, wanted)
    return await serve_version(request, partition, obj_hash, meta, _headers(meta), read_ahead)


async def serve_version(
    request: web.Request,
    partition: int,
    obj_hash: str,
    meta: ObjectMeta,
    headers: CIMultiDict[str],
    read_ahead: list[bytes] | None = None,
    *,
    unsent_limit: int = 0,
) -> web.StreamResponse:
    """Answer GET or HEAD for one stored version: validators, ranges, sendfile when possible;
    a socket sent down by sendfile holds at most `unsent_limit` bytes unsent (0: the kernel's
    default)."""
    if _not_modified(request, meta):
        return web.Response(status=304, headers=headers)
    store, metrics = request.app[STORE], request.app[METRICS]
    if request.method == hdrs.METH_HEAD:
        headers[hdrs.CONTENT_LENGTH] = str(meta.size)
        return web.Response(headers=headers)
    try:
        if isinstance(store, DiskStore) and has_checksums(meta):
            return await _serve_checked(
                request, store, partition, obj_hash, meta, headers, read_ahead or [], unsent_limit
            )
        response, span = _streamed(request, meta, headers)
        chunks = aiter(store.read(partition, obj_hash, meta, *span))
        first = await anext(chunks, b"")  # opens the file before any header leaves
    except FileNotFoundError:
        raise NotFound(f"version {meta.version} was replaced while it was read") from None
    await response.prepare(request)
    await response.write(first)
    metrics.bytes_sent.inc(len(first))
    async for chunk in chunks:
        await response.write(chunk)
        metrics.bytes_sent.inc(len(chunk))
    await response.write_eof()
    return response


def _streamed(
    request: web.Request, meta: ObjectMeta, headers: CIMultiDict[str]
) -> tuple[web.StreamResponse, tuple[int, int]]:
    """A 200 or 206 response for the requested span, and the span."""
    partial = _wants_range(request, meta)
    span = _byte_range(request, meta.size) if partial else (0, meta.size)
    response = web.StreamResponse(status=206 if partial else 200, headers=headers)
    if partial:
        response.headers[hdrs.CONTENT_RANGE] = f"bytes {span[0]}-{span[1] - 1}/{meta.size}"
    response.content_length = span[1] - span[0]
    return response, span


async def _serve_checked(
    request: web.Request,
    store: DiskStore,
    partition: int,
    obj_hash: str,
    meta: ObjectMeta,
    headers: CIMultiDict[str],
    read_ahead: list[bytes],
    unsent_limit: int,
) -> web.StreamResponse:
    """Every block is checked before any of it leaves (`read_ahead`, the body if the lookup
    read it, was; it is emptied here, so a body the budget refuses is not kept alive). A bad
    block takes the copy out of service and ends the answer: with an error if it is in the
    first window, else by closing the connection short, so the gateway resumes on another
    replica at that byte."""
    response, (start, end) = _streamed(request, meta, headers)
    inline = request.app[INLINE_READS]
    try:
        # A version of one block, which checking it reads into memory anyway, is read whole,
        # with the lookup for a GET, and written: a medium GET cost the node 12% less CPU than
        # by four hops and sendfile. A slow reader holds it, and the transport's copy of what
        # the socket has not taken: twice its size counts against a budget, past which
        # sendfile, holding nothing.
        held = 2 * meta.size
        taken = meta.size <= BLOCK_SIZE and inline.take(held)
        body = read_ahead.pop() if read_ahead and taken else None
        read_ahead.clear()
        if taken:
            try:
                if body is None:
                    body = await checked_bytes(store, partition, obj_hash, meta)
                await response.prepare(request)
                await response.write(memoryview(body)[start:end])
            finally:
                inline.give(held)
            request.app[METRICS].bytes_sent.inc(end - start)
        else:
            async with CheckedFile.open(store, partition, obj_hash, meta) as checked:
                await _send_checked(request, response, checked, (start, end), unsent_limit)
    except ReplicaCorrupt:
        await request.app[QUARANTINE].report(partition, obj_hash, meta, "read")
        if not response.prepared:
            raise
        response.force_close()
        return response
    await response.write_eof()
    return response


async def _send_checked(
    request: web.Request,
    response: web.StreamResponse,
    checked: CheckedFile,
    span: tuple[int, int],
    unsent_limit: int,
) -> None:
    """Send each window by sendfile once it is checked, checking the next one meanwhile; the
    socket holds at most `unsent_limit` unsent, topped up as the reader takes bytes."""
    loop, metrics = asyncio.get_running_loop(), request.app[METRICS]
    windows = checked.windows(*span)
    await checked.check(*windows[0])
    await response.prepare(request)
    transport = request.transport
    if transport is None:
        raise ConnectionResetError("the client went away")
    limit_unsent(transport, unsent_limit)
    for window, following in zip(windows, [*windows[1:], None], strict=True):
        ahead = asyncio.ensure_future(checked.check(*following)) if following else None
        try:
            await loop.sendfile(transport, checked.file, *window)
        finally:
            if ahead is not None:  # the file must outlive the check reading it
                await asyncio.wait([ahead])
        metrics.bytes_sent.inc(window[1])
        if ahead is not None:
            ahead.result()


async def delete_object(request: web.Request) -> web.Response:
    """Write a tombstone; it wins over every older version and loses to every newer one."""
    partition, obj_hash = _address(request)
    bucket, key, version = _identity(request, obj_hash)
    metrics = request.app[METRICS]
    try:
        meta = await request.app[STORE].write_tombstone(
            partition, obj_hash, ObjectMeta.tombstone_of(bucket, key, version)
        )
    except Superseded:
        metrics.commits.labels("tombstone", "superseded").inc()
        raise
    metrics.commits.labels("tombstone", "committed").inc()
    return web.json_response(meta.listing_entry())


async def discard_version(request: web.Request) -> web.Response:
    """Withdraw a version whose write missed its quorum, unless something newer replaced it."""
    partition, obj_hash = _address(request)
    discarded = await request.app[STORE].discard(partition, obj_hash, request.match_info["version"])
    return web.json_response({"discarded": discarded})
