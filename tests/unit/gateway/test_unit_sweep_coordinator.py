"""gateway.sweep.SweepCoordinator with a fake node client and a real SQLite catalog: paging of
candidates, only unwanted replicas discarded, dry runs, the refusal, one node's failure."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from gateway.catalog import BucketRecord, ObjectRecord
from gateway.nodes import NodeFailed, NodeUnavailable
from gateway.sqlite_catalog import SqliteCatalog
from gateway.sweep import PAGE, SWEEP_TIMEOUT, SweepCoordinator, totals
from ring import Node
from shardgate.internal_api import SWEEP_PATH
from shardgate.sweep_report import SweepReport
from shardgate.versions import format_version

V1 = format_version(1_000)
A, B = Node("a", "http://a.test:1"), Node("b", "http://b.test:2")


def replica(partition: int, key: str) -> dict[str, Any]:
    return {
        "partition": partition,
        "hash": f"{partition:032x}",
        "bucket": "b",
        "key": key,
        "version": V1,
    }


class FakeNodes:
    """Answers the sweep resource like a node would; replicas come `per_page` partitions a page."""

    def __init__(self, held: dict[str, list[dict[str, Any]]], per_page: int = 2) -> None:
        self.held = held
        self.per_page = per_page
        self.calls: list[tuple[str, str, str, Any, float]] = []
        self.discarded: dict[str, list[dict[str, Any]]] = {}
        self.fail: set[tuple[str, str]] = set()  # (node id, resource) pairs that fail

    async def call(
        self, node: Node, method: str, path: str, body: Any = None, *, within: float
    ) -> Any:
        self.calls.append((node.id, method, path, body, within))
        url = urlsplit(path)
        resource = url.path.removeprefix(SWEEP_PATH).strip("/") or "sweep"
        if (node.id, resource) in self.fail:
            raise NodeFailed(node, f"{resource} answered 500")
        if resource == "sweep":
            assert method == "POST"
            report = SweepReport(body["dry_run"])
            report.add("tmp", ["tmp/x.tmp"], 5)
            return report.to_json()
        if resource == "candidates":
            assert method == "GET" and body is None
            after = int(parse_qs(url.query)["after"][0])
            parts = sorted({r["partition"] for r in self.held[node.id] if r["partition"] > after})
            taken = parts[: self.per_page]
            page = [r for r in self.held[node.id] if r["partition"] in taken]
            more = len(parts) > self.per_page
            return {"replicas": page, "next": taken[-1] if more else None}
        assert (method, resource) == ("POST", "discard")
        self.discarded.setdefault(node.id, []).extend(body["replicas"])
        report = SweepReport(body["dry_run"])
        for r in body["replicas"]:
            report.add("orphan", [f"objects/{r['partition']}/{r['hash']}/{V1}.data"], 3)
        return report.to_json()

    def afters(self, node_id: str) -> list[int]:
        return [
            int(parse_qs(urlsplit(path).query)["after"][0])
            for n, _, path, _, _ in self.calls
            if n == node_id and "/candidates" in path
        ]

    def bodies(self, node_id: str, suffix: str) -> list[Any]:
        return [
            body
            for n, _, path, body, _ in self.calls
            if n == node_id and path == SWEEP_PATH + suffix
        ]


@pytest.fixture
async def catalog(tmp_path: Path) -> AsyncIterator[SqliteCatalog]:
    cat = SqliteCatalog(tmp_path / "c.sqlite3")
    await cat.open()
    await cat.put_bucket(BucketRecord("b", created=1.0))
    yield cat
    await cat.close()


async def want(catalog: SqliteCatalog, *keys: str) -> None:
    for key in keys:
        record = ObjectRecord("b", key, V1, 1, "e" * 32, "text/plain", ("a", "b"))
        await catalog.commit_object(record)


def keys(replicas: list[dict[str, Any]]) -> list[str]:
    return [r["key"] for r in replicas]


async def test_pages_through_candidates_and_discards_only_unwanted(catalog: SqliteCatalog) -> None:
    held = [replica(p, f"k{p}-{i}") for p in (0, 2, 3, 5, 9) for i in range(2)]
    await want(catalog, "k0-0", "k2-1", "k3-0", "k3-1", "k9-0")
    nodes = FakeNodes({"a": held})
    (result,) = await SweepCoordinator(nodes, catalog).sweep([A], dry_run=False)  # type: ignore[arg-type]
    assert result.error is None and result.node == A
    assert nodes.afters("a") == [-1, 2, 5]
    assert all(f"limit={PAGE}" in path for _, _, path, _, _ in nodes.calls if "/candidates" in path)
    assert keys(nodes.discarded["a"]) == ["k0-1", "k2-0", "k5-0", "k5-1", "k9-1"]
    assert nodes.discarded["a"][0] == held[1]  # sent back exactly as the node named it
    assert nodes.bodies("a", "") == [{"dry_run": False}]
    assert (result.report.files["tmp"], result.report.files["orphan"]) == (1, 5)
    assert (result.report.bytes["tmp"], result.report.bytes["orphan"]) == (5, 15)
    assert len(result.report.removed) == 6 and not result.report.dry_run
    assert {within for *_, within in nodes.calls} == {SWEEP_TIMEOUT}


async def test_dry_run_reaches_every_call_and_local_false_skips_the_node_sweep(
    catalog: SqliteCatalog,
) -> None:
    nodes = FakeNodes({"a": [replica(1, "x"), replica(4, "y")]})
    coordinator = SweepCoordinator(nodes, catalog)  # type: ignore[arg-type]
    (result,) = await coordinator.sweep([A], dry_run=True)
    assert nodes.bodies("a", "") == [{"dry_run": True}]
    (discard,) = nodes.bodies("a", "/discard")
    assert discard["dry_run"] is True and keys(discard["replicas"]) == ["x", "y"]
    assert result.report.dry_run and result.report.files["orphan"] == 2
    nodes.calls.clear()
    (result,) = await coordinator.sweep([A], dry_run=True, local=False)
    assert nodes.bodies("a", "") == []
    assert result.report.files == {**result.report.files, "tmp": 0, "orphan": 2}


async def test_nothing_unwanted_sends_no_discard(catalog: SqliteCatalog) -> None:
    await want(catalog, "x")
    nodes = FakeNodes({"a": [replica(1, "x")]})
    (result,) = await SweepCoordinator(nodes, catalog).sweep([A], dry_run=False)  # type: ignore[arg-type]
    assert nodes.bodies("a", "/discard") == [] and result.report.files["orphan"] == 0


@pytest.mark.parametrize(
    ("checked", "unknown", "refused"),
    [(100, 51, True), (100, 50, False), (99, 99, False), (250, 126, True), (250, 125, False)],
)
async def test_refuses_when_most_of_at_least_100_replicas_are_unknown(
    catalog: SqliteCatalog, checked: int, unknown: int, refused: bool
) -> None:
    held = [replica(i // 10, f"k{i}") for i in range(checked)]
    await want(catalog, *(f"k{i}" for i in range(unknown, checked)))
    nodes = FakeNodes({"a": held}, per_page=3)
    (result,) = await SweepCoordinator(nodes, catalog).sweep([A], dry_run=False)  # type: ignore[arg-type]
    assert result.report.files["tmp"] == 1  # the node's own sweep still counts
    if refused:
        assert result.error is not None and f"{unknown} of {checked}" in result.error
        assert nodes.bodies("a", "/discard") == [] and result.report.files["orphan"] == 0
    else:
        assert result.error is None
        assert keys(nodes.discarded["a"]) == [f"k{i}" for i in range(unknown)]


async def test_force_sweeps_past_the_refusal_in_pages(catalog: SqliteCatalog) -> None:
    held = [replica(i // 100, f"k{i}") for i in range(PAGE + 300)]
    nodes = FakeNodes({"a": held}, per_page=4)
    coordinator = SweepCoordinator(nodes, catalog)  # type: ignore[arg-type]
    (refused,) = await coordinator.sweep([A], dry_run=True)
    assert refused.error is not None and nodes.bodies("a", "/discard") == []
    (result,) = await coordinator.sweep([A], dry_run=False, force=True)
    assert result.error is None
    sizes = [len(body["replicas"]) for body in nodes.bodies("a", "/discard")]
    assert sizes == [PAGE, 300]
    assert keys(nodes.discarded["a"]) == [f"k{i}" for i in range(PAGE + 300)]
    assert result.report.files["orphan"] == PAGE + 300


@pytest.mark.parametrize("failing", ["sweep", "candidates", "discard"])
async def test_one_node_failing_does_not_stop_the_others(
    catalog: SqliteCatalog, failing: str
) -> None:
    nodes = FakeNodes({"a": [replica(1, "gone-a")], "b": [replica(1, "gone-b")]})
    nodes.fail.add(("a", failing))
    results = await SweepCoordinator(nodes, catalog).sweep([A, B], dry_run=False)  # type: ignore[arg-type]
    assert [r.node.id for r in results] == ["a", "b"]
    bad, good = results
    assert bad.error is not None and "node a" in bad.error and failing in bad.error
    assert good.error is None and keys(nodes.discarded["b"]) == ["gone-b"]
    assert good.report.files["orphan"] == 1 and good.report.files["tmp"] == 1
    assert bad.report.files["tmp"] == (0 if failing == "sweep" else 1)
    assert bad.report.files["orphan"] == 0
    total = totals(results, dry_run=False)
    assert total.files["tmp"] == good.report.files["tmp"] + bad.report.files["tmp"]
    assert (total.files["orphan"], total.bytes["orphan"]) == (1, 3)
    doc = bad.to_json()
    assert (doc["node"], doc["url"], doc["error"]) == ("a", A.url, bad.error)
    assert doc["kinds"]["tmp"]["files"] == bad.report.files["tmp"]


async def test_unreachable_node_is_reported(catalog: SqliteCatalog) -> None:
    class Down(FakeNodes):
        async def call(
            self, node: Node, method: str, path: str, body: Any = None, *, within: float
        ) -> Any:
            if node.id == "a":
                raise NodeUnavailable(node, "connection refused")
            return await super().call(node, method, path, body, within=within)

    nodes = Down({"b": []})
    results = await SweepCoordinator(nodes, catalog).sweep([A, B], dry_run=False)  # type: ignore[arg-type]
    assert [r.error is None for r in results] == [False, True]
    assert "connection refused" in (results[0].error or "")
    assert results[0].report.total_files == 0
