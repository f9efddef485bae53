"""Pending direct uploads on disk: published as one version file with its trailer, and a publish
cut short after the trailer went on leaves the upload's own bytes and sha256 unchanged."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from shardgate.versions import format_version
from storage_node.disk import DiskStore
from storage_node.records import NewVersion, ObjectMeta, PendingUpload
from storage_node.version_file import put_trailer, read_meta_at

PART, HASH, V1 = 3, "c" * 32, format_version(1_000)
BODY = os.urandom(300_000)


async def received(store: DiskStore) -> PendingUpload:
    await store.uploads.claim("u1", commit_by=0.0)
    writer = await store.create_writer(PART, HASH)
    for at in range(0, len(BODY), 100_000):
        await writer.write(BODY[at : at + 100_000])
    fields = ("u1", "bkt", "k", PART, HASH, 0, "", None, "application/pdf", "", 0.0)
    upload = await writer.commit_pending(PendingUpload(*fields))
    store.uploads.release("u1")
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
