"""gateway.sqlite_sweep.SqliteSweep.unwanted_replicas, through the real SqliteCatalog: which
replicas nothing in the catalog wants (plain objects, multipart parts, staged form files)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from gateway.catalog import BucketRecord, ObjectRecord, PartRecord, UploadRecord
from gateway.sqlite_catalog import SqliteCatalog
from shardgate.internal_api import PARTS_BUCKET, part_key
from shardgate.versions import format_version

V1, V2, V3, V4 = (format_version(n) for n in (1_000, 2_000, 3_000, 4_000))
NOW = 1_700_000_000.0


@pytest.fixture
async def catalog(tmp_path: Path) -> AsyncIterator[SqliteCatalog]:
    cat = SqliteCatalog(tmp_path / "c.sqlite3")
    await cat.open()
    for name in ("photos", "docs"):
        await cat.put_bucket(BucketRecord(name, created=NOW))
    yield cat
    await cat.close()


def obj(
    version: str, key: str = "a.jpg", *, bucket: str = "photos", manifest: Sequence[PartRecord] = ()
) -> ObjectRecord:
    return ObjectRecord(
        bucket=bucket,
        key=key,
        version=version,
        size=sum(p.size for p in manifest) or 10,
        etag="e" * 32,
        content_type="image/jpeg",
        replicas=() if manifest else ("n1", "n2"),
        manifest=tuple(manifest),
    )


def upload(upload_id: str, key: str = "big.bin", state: str = "open") -> UploadRecord:
    return UploadRecord(upload_id, "photos", key, "image/jpeg", {}, NOW, NOW + 3600, state)


def part(upload_id: str, number: int, version: str) -> PartRecord:
    return PartRecord(upload_id, number, version, 5, f"{number:032x}", ("n1", "n2"))


def ref(upload_id: str, number: int, version: str) -> tuple[str, str, str]:
    return (PARTS_BUCKET, part_key(upload_id, number), version)


async def complete(
    catalog: SqliteCatalog,
    upload_id: str,
    version: str,
    parts: list[PartRecord],
    key: str = "big.bin",
) -> None:
    await catalog.add_upload(upload(upload_id, key))
    for p in parts:
        assert (await catalog.put_part(p, NOW))[0]
    record = obj(version, key, manifest=parts)
    assert (await catalog.end_upload(upload_id, "completed", record))[0] == "ended"


async def unwanted(catalog: SqliteCatalog, refs: list[tuple[str, str, str]]) -> list[int]:
    return await catalog.unwanted_replicas(refs)


async def test_nothing_asked_nothing_unwanted(catalog: SqliteCatalog) -> None:
    assert await unwanted(catalog, []) == []


async def test_plain_replica_wanted_iff_object_live_and_plain(catalog: SqliteCatalog) -> None:
    await catalog.commit_object(obj(V2, "live.jpg"))
    await catalog.commit_object(obj(V1, "gone.jpg"))
    assert await catalog.remove_object("photos", "gone.jpg", V3)
    await complete(catalog, "up1", V2, [part("up1", 1, V1)], key="multi.jpg")
    assert (await catalog.get_object("photos", "multi.jpg")) is not None
    refs = [
        ("photos", "live.jpg", V2),  # the current version
        ("photos", "live.jpg", V1),  # an older one: the replicator's business, still wanted
        ("photos", "live.jpg", V4),  # a newer one the catalog has not seen yet: wanted
        ("photos", "gone.jpg", V1),  # deleted
        ("photos", "never.jpg", V1),  # never known
        ("docs", "live.jpg", V2),  # same key, other bucket
        ("photos", "multi.jpg", V2),  # a manifest object holds no bytes of its own
        ("photos", "LIVE.jpg", V2),  # keys are case-sensitive
    ]
    assert await unwanted(catalog, refs) == [3, 4, 5, 6, 7]


async def test_deleted_then_rewritten_object_is_wanted_again(catalog: SqliteCatalog) -> None:
    await catalog.commit_object(obj(V1))
    await catalog.remove_object("photos", "a.jpg", V2)
    assert await unwanted(catalog, [("photos", "a.jpg", V1)]) == [0]
    await catalog.commit_object(obj(V3))
    assert await unwanted(catalog, [("photos", "a.jpg", V1), ("photos", "a.jpg", V3)]) == []


async def test_open_and_staging_uploads_want_every_part_version(catalog: SqliteCatalog) -> None:
    await catalog.add_upload(upload("open1"))
    await catalog.add_upload(upload("form-1", state="staging"))
    accepted, _ = await catalog.put_part(part("open1", 1, V2), NOW)
    assert accepted
    refs = [
        ref("open1", 1, V2),  # recorded
        ref("open1", 1, V1),  # an earlier send of part 1, not yet reclaimed
        ref("open1", 7, V3),  # arrived on a node, not yet adopted (presigned)
        ref("form-1", 1, V1),  # a staged form file
        ref("nobody", 1, V1),  # no such upload
    ]
    assert await unwanted(catalog, refs) == [4]


async def test_completed_upload_wants_exactly_its_manifest(catalog: SqliteCatalog) -> None:
    await catalog.add_upload(upload("up"))
    for p in (part("up", 1, V1), part("up", 1, V2), part("up", 2, V1), part("up", 10, V1)):
        await catalog.put_part(p, NOW)
    chosen = [part("up", 1, V2), part("up", 2, V1)]
    ending, _ = await catalog.end_upload("up", "completed", obj(V3, "big.bin", manifest=chosen))
    assert ending == "ended"
    refs = [
        ref("up", 1, V2),
        ref("up", 2, V1),
        ref("up", 1, V1),  # replaced by a later send of part 1
        ref("up", 2, V2),  # not the version the manifest names
        ref("up", 10, V1),  # uploaded but left out of the complete
        ref("up", 3, V1),
    ]
    assert await unwanted(catalog, refs) == [2, 3, 4, 5]


async def test_parts_of_a_completed_upload_go_when_its_object_is_replaced_or_deleted(
    catalog: SqliteCatalog,
) -> None:
    await complete(catalog, "first", V1, [part("first", 1, V1)])
    await complete(catalog, "second", V2, [part("second", 1, V1)])
    refs = [ref("first", 1, V1), ref("second", 1, V1)]
    assert await unwanted(catalog, refs) == [0]
    await catalog.commit_object(obj(V3, "big.bin"))  # a plain PUT over the manifest object
    assert await unwanted(catalog, refs) == [0, 1]
    await complete(catalog, "third", V4, [part("third", 1, V4)])
    assert await unwanted(catalog, [ref("third", 1, V4)]) == []
    await catalog.remove_object("photos", "big.bin", format_version(5_000))
    assert await unwanted(catalog, [ref("third", 1, V4)]) == [0]


async def test_aborted_expired_and_malformed_parts_are_unwanted(catalog: SqliteCatalog) -> None:
    for upload_id in ("ab", "ex"):
        await catalog.add_upload(upload(upload_id))
        await catalog.put_part(part(upload_id, 1, V1), NOW)
    await catalog.end_upload("ab", "aborted")
    await catalog.end_upload("ex", "expired")
    await catalog.commit_object(obj(V2, "big.bin"))  # a live object at the uploads' key
    refs = [
        ref("ab", 1, V1),
        ref("ex", 1, V1),
        (PARTS_BUCKET, "ab", V1),  # not <upload_id>/<n>
        (PARTS_BUCKET, "", V1),
    ]
    assert await unwanted(catalog, refs) == [0, 1, 2, 3]


async def test_staged_form_file_lifecycle(catalog: SqliteCatalog) -> None:
    """stage -> publish_staged (one-part manifest, staging completed) or withdraw_staged."""
    staged = part("form-a", 1, V1)
    await catalog.add_upload(upload("form-a", key="pic.jpg", state="staging"))
    await catalog.add_upload(upload("form-b", key="pic2.jpg", state="staging"))
    both = [ref("form-a", 1, V1), ref("form-b", 1, V1)]
    assert await unwanted(catalog, both) == []
    assert await catalog.commit_object(obj(V2, "pic.jpg", manifest=[staged]))
    ending, _ = await catalog.end_upload("form-a", "completed")
    assert ending == "ended"
    await catalog.end_upload("form-b", "aborted")  # withdrawn
    assert await unwanted(catalog, both) == [1]
    assert await unwanted(catalog, [ref("form-a", 1, V2)]) == [0]


async def test_upload_id_with_a_slash_splits_at_the_last_one(catalog: SqliteCatalog) -> None:
    await catalog.add_upload(upload("dir/up"))
    refs = [(PARTS_BUCKET, "dir/up/3", V1), (PARTS_BUCKET, "dir/3", V1)]
    assert await unwanted(catalog, refs) == [1]


async def test_answers_in_input_order_with_duplicates(catalog: SqliteCatalog) -> None:
    await catalog.commit_object(obj(V1, "k1"))
    refs = [("photos", "x", V1), ("photos", "k1", V1), ("photos", "x", V1), ("photos", "k1", V2)]
    assert await unwanted(catalog, refs) == [0, 2]
    assert await unwanted(catalog, refs * 300) == [i for i in range(1200) if i % 2 == 0]
