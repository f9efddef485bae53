"""Pending direct uploads on disk: published as one version file with its trailer; a publish
cut short after the trailer went on leaves the upload's own bytes and sha256 unchanged; a
commit retried under a newer version finds the bytes an earlier publish put in place, even one
the node stopped before recording."""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest

from shardgate.versions import format_version
from storage_node import pending_store
from storage_node.disk import DiskStore
from storage_node.errors import NoSuchUpload, Superseded
from storage_node.records import NewVersion, ObjectMeta, PendingUpload
from storage_node.version_file import put_trailer, read_meta_at

PART, HASH = 3, "c" * 32
V1, V2, V3, V4 = (format_version(t) for t in (1_000, 2_000, 3_000, 4_000))
BODY = os.urandom(300_000)


async def received(store: DiskStore, upload_id: str = "u1") -> PendingUpload:
    await store.uploads.claim(upload_id, commit_by=0.0)
    writer = await store.create_writer(PART, HASH)
    for at in range(0, len(BODY), 100_000):
        await writer.write(BODY[at : at + 100_000])
    fields = (upload_id, "bkt", "k", PART, HASH, 0, "", None, "application/pdf", "", 0.0)
    upload = await writer.commit_pending(PendingUpload(*fields))
    store.uploads.release(upload_id)
    return upload


async def test_a_published_upload_is_one_file_with_its_trailer(tmp_path: Path) -> None:
    store = DiskStore(tmp_path / "node")
    upload = await received(store)
    meta = await store.uploads.publish(upload, NewVersion("bkt", "k", V1, upload.content_type))
    path = store.data_path(PART, HASH, V1)
    assert read_meta_at(path) == meta == await store.newest(PART, HASH)
    assert path.read_bytes()[: meta.size] == BODY
    assert not store.uploads.data("u1").exists()


async def test_a_publish_cut_short_after_the_trailer_changes_nothing(tmp_path: Path) -> None:
    store = DiskStore(tmp_path / "node")
    upload = await received(store)
    meta = ObjectMeta("bkt", "k", V1, upload.size, upload.etag, blocks=upload.blocks)
    put_trailer(store.uploads.data("u1"), meta, fsync=False)  # then the node died: no rename
    hashed = await store.uploads.with_sha256(upload)
    assert hashed.sha256 == hashlib.sha256(BODY).hexdigest()
    published = await store.uploads.publish(hashed, NewVersion("bkt", "k", V1))
    assert store.data_path(PART, HASH, V1).read_bytes()[: published.size] == BODY
    assert read_meta_at(store.data_path(PART, HASH, V1)) == published


async def test_a_commit_retried_after_a_crash_mid_publish_publishes_the_newer_version(
    tmp_path: Path,
) -> None:
    """The node put V1 in place and stopped before recording it: the upload still reads as
    received while its pending file is gone. The gateway's retry asks for V2."""
    store = DiskStore(tmp_path / "node")
    upload = await received(store)
    await store.uploads.publish(upload, NewVersion("bkt", "k", V1, upload.content_type))
    store.uploads.write_state(upload)  # the state as the crash left it
    assert (await store.uploads.get("u1")) == upload
    assert await store.uploads.body(upload) == store.data_path(PART, HASH, V1)
    hashed = await store.uploads.with_sha256(upload)
    assert hashed.sha256 == hashlib.sha256(BODY).hexdigest()

    again = await store.uploads.publish(upload, NewVersion("bkt", "k", V1, upload.content_type))
    assert again.version == V1  # the same publish again, though the node never recorded it
    meta = await store.uploads.publish(hashed, NewVersion("bkt", "k", V2, upload.content_type))
    assert meta.version == V2 and (await store.newest(PART, HASH)) == meta
    assert store.data_path(PART, HASH, V2).read_bytes()[: meta.size] == BODY
    assert sorted(p.name for p in store.object_dir(PART, HASH).iterdir()) == [f"{V2}.data"]
    state = await store.uploads.get("u1")
    assert state is not None and (state.state, state.version) == ("published", V2)


async def test_a_published_upload_goes_to_the_newer_version_a_retry_asks_for(
    tmp_path: Path,
) -> None:
    """The gateway never recorded V1 (it stopped, or its catalog failed) and commits again as
    V2; the same publish again is answered alike, a late one of V1 is superseded."""
    store = DiskStore(tmp_path / "node")
    upload = await received(store)
    await store.uploads.publish(upload, NewVersion("bkt", "k", V1, upload.content_type))
    published = await store.uploads.get("u1")
    assert published is not None
    hashed = await store.uploads.with_sha256(published)  # a retry may state a sha256 first
    assert hashed.sha256 == hashlib.sha256(BODY).hexdigest()
    meta = await store.uploads.publish(hashed, NewVersion("bkt", "k", V2))
    assert (meta.version, meta.upload_id) == (V2, "u1")
    assert await store.newest(PART, HASH) == meta
    assert store.data_path(PART, HASH, V2).read_bytes()[: meta.size] == BODY
    again = await store.uploads.get("u1")
    assert again is not None and (again.state, again.version, again.sha256) == (
        "published",
        V2,
        hashed.sha256,
    )
    assert await store.uploads.publish(again, NewVersion("bkt", "k", V2)) == meta
    with pytest.raises(Superseded):
        await store.uploads.publish(again, NewVersion("bkt", "k", V1))  # attempt 1, late


async def test_an_upload_whose_version_was_replaced_is_not_published_again(
    tmp_path: Path,
) -> None:
    store = DiskStore(tmp_path / "node")
    upload = await received(store)
    await store.uploads.publish(upload, NewVersion("bkt", "k", V1, upload.content_type))
    await store.write_tombstone(PART, HASH, ObjectMeta.tombstone_of("bkt", "k", V3))
    with pytest.raises(Superseded):
        await store.uploads.publish(upload, NewVersion("bkt", "k", V2))
    with pytest.raises(NoSuchUpload, match="gone from this node"):
        await store.uploads.publish(upload, NewVersion("bkt", "k", V4))
    with pytest.raises(NoSuchUpload, match="gone from this node"):
        await store.uploads.body(upload)
    assert (await store.newest(PART, HASH) or upload).version == V3


async def test_a_retry_cut_short_after_taking_the_bytes_back_publishes_them(
    tmp_path: Path,
) -> None:
    """The node stopped right after moving V1's file back to pending/: no version is left in
    place, and the next retry publishes the pending file, V1's trailer and all, as V3."""
    store = DiskStore(tmp_path / "node")
    upload = await received(store)
    await store.uploads.publish(upload, NewVersion("bkt", "k", V1, upload.content_type))
    os.rename(store.data_path(PART, HASH, V1), store.uploads.data("u1"))
    published = await store.uploads.get("u1")
    assert published is not None and await store.newest(PART, HASH) is None
    meta = await store.uploads.publish(published, NewVersion("bkt", "k", V3))
    assert await store.newest(PART, HASH) == meta and meta.version == V3
    assert store.data_path(PART, HASH, V3).read_bytes()[: meta.size] == BODY
    assert read_meta_at(store.data_path(PART, HASH, V3)) == meta


async def test_the_same_bytes_published_by_another_upload_are_not_taken(tmp_path: Path) -> None:
    """Only the version an upload itself became counts as its bytes, never another with the
    same size, md5 and block sums, which the catalog may record."""
    store = DiskStore(tmp_path / "node")
    first = await received(store, "u1")
    await store.uploads.publish(first, NewVersion("bkt", "k", V1, first.content_type))
    second = await received(store, "u2")
    other = await store.uploads.publish(second, NewVersion("bkt", "k", V3, second.content_type))
    assert (other.etag, other.blocks) == (first.etag, first.blocks)
    with pytest.raises(NoSuchUpload, match="gone from this node"):
        await store.uploads.publish(first, NewVersion("bkt", "k", V4))
    assert await store.newest(PART, HASH) == other
    assert store.data_path(PART, HASH, V3).exists()


def test_only_a_published_upload_names_itself_in_the_trailer() -> None:
    """Other versions' metadata reads as it always did, and a field a later release adds is
    skipped, so a node rolled back still reads the file."""
    plain = ObjectMeta("bkt", "k", V1, 3, "e")
    assert b"upload_id" not in plain.to_json()
    named = ObjectMeta("bkt", "k", V1, 3, "e", upload_id="u1")
    assert ObjectMeta.from_json(named.to_json()) == named
    later = named.to_json().replace(b'"bucket"', b'"added_later": 1, "bucket"')
    assert ObjectMeta.from_json(later) == named


async def test_hashing_an_upload_holds_no_lock_on_its_object(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A multi-GB hash takes its time: a delete and a publish of the object go on meanwhile,
    a retried commit waits for the same hash, and the hash, read from the file it opened, is
    recorded in the state the publish left."""
    store = DiskStore(tmp_path / "node")
    upload = await received(store)
    started, go = threading.Event(), threading.Event()
    hashes: list[object] = []

    class Held:
        """sha256 that stops at its first block until told to go on."""

        def __init__(self) -> None:
            hashes.append(self)
            self._real = hashlib.sha256()

        def update(self, data: bytes) -> None:
            started.set()
            go.wait(10)
            self._real.update(data)

        def hexdigest(self) -> str:
            return self._real.hexdigest()

    monkeypatch.setattr(pending_store, "hashlib", SimpleNamespace(sha256=Held))
    hashing = asyncio.ensure_future(store.uploads.with_sha256(upload))
    await asyncio.get_running_loop().run_in_executor(None, started.wait, 10)
    retried = asyncio.ensure_future(store.uploads.with_sha256(upload))
    try:
        deleted = store.write_tombstone(PART, HASH, ObjectMeta.tombstone_of("bkt", "k", V1))
        assert (await asyncio.wait_for(deleted, 5)).tombstone
        published = store.uploads.publish(upload, NewVersion("bkt", "k", V2))
        assert (await asyncio.wait_for(published, 5)).version == V2
        assert not store.uploads.data("u1").exists()  # moved while it was being hashed
    finally:
        go.set()
    hashed = await hashing
    assert await retried == hashed and len(hashes) == 1
    assert hashed.sha256 == hashlib.sha256(BODY).hexdigest()
    assert (hashed.state, hashed.version) == ("published", V2)
    assert await store.uploads.get("u1") == hashed
