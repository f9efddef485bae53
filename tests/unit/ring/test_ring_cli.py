"""`shardgate ring create|show|place|add-node|remove-node|set-weight`, driven through a parser
built the way the CLI builds it."""

import argparse
import json
from pathlib import Path

import pytest

from ring import Ring, load_ring_file
from shardgate.cli.ring_cmd import add_parser

NODES = [
    "--node=id=n1,url=http://127.0.0.1:9001,zone=a",
    "--node=id=n2,url=http://127.0.0.1:9002,weight=2,zone=b",
    "--node=id=n3,url=http://127.0.0.1:9003,zone=c",
    "--node=id=n4,url=http://127.0.0.1:9004,weight=0.5,zone=a",
]


def _run(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="shardgate")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    code: int = args.func(args)
    return code


def _lines(capsys: pytest.CaptureFixture[str]) -> dict[str, str]:
    out = capsys.readouterr().out
    return {line.split()[0]: line.split(maxsplit=1)[1] for line in out.splitlines() if line}


def test_create_writes_a_loadable_ring(tmp_path: Path) -> None:
    out = tmp_path / "ring.json"
    assert _run("ring", "create", str(out), *NODES, "--partition-power", "8") == 0
    spec = load_ring_file(out)
    assert (spec.epoch, spec.partition_power, spec.replicas, spec.strategy) == (
        1,
        8,
        3,
        "ketama",
    )
    assert [(n.id, n.weight, n.zone) for n in spec.nodes] == [
        ("n1", 1.0, "a"),
        ("n2", 2.0, "b"),
        ("n3", 1.0, "c"),
        ("n4", 0.5, "a"),
    ]


def test_place_prints_partition_primaries_and_handoffs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "ring.json"
    _run("ring", "create", str(out), *NODES, "--strategy", "rendezvous")
    capsys.readouterr()

    assert _run("ring", "place", str(out), "photos/2024/cat.jpg") == 0
    printed = _lines(capsys)
    ring = Ring(load_ring_file(out))
    partition = ring.partition("photos", "2024/cat.jpg")
    assert printed["partition"] == str(partition)
    assert printed["primaries"] == ", ".join(
        f"{node.id} ({node.url})" for node in ring.primaries(partition)
    )
    assert printed["handoffs"] == ", ".join(
        f"{node.id} ({node.url})" for node in ring.handoffs(partition)
    )


def test_show_prints_partitions_per_node(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "ring.json"
    _run("ring", "create", str(out), *NODES, "--replicas", "2")
    capsys.readouterr()

    assert _run("ring", "show", str(out)) == 0
    printed = _lines(capsys)
    ring = Ring(load_ring_file(out))
    assert printed["epoch"].startswith("1 ")
    shares = 0.0
    for node in ring.nodes:
        columns = printed[node.id].split()
        assert int(columns[2]) == len(ring.partitions_of(node.id))
        shares += float(columns[3].rstrip("%"))
    assert shares == pytest.approx(100, abs=0.05)


def test_create_refuses_to_overwrite_without_force(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "ring.json"
    out.write_text("{}")
    assert _run("ring", "create", str(out), *NODES) == 1
    assert "--force" in capsys.readouterr().err
    assert out.read_text() == "{}"
    assert _run("ring", "create", str(out), *NODES, "--force") == 0
    assert json.loads(out.read_text())["epoch"] == 1


@pytest.mark.parametrize(
    "node",
    [
        "id=n1",
        "url=http://h:1",
        "id=n1,url=http://h:1,colour=red",
        "id=n1,url=h:1",
        "id=n1,url=http://h:1,weight=x",
    ],
)
def test_create_rejects_malformed_nodes(
    tmp_path: Path, node: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        _run("ring", "create", str(tmp_path / "ring.json"), "--node", node)
    assert exit_info.value.code == 2
    assert "--node" in capsys.readouterr().err


def test_create_reports_ring_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "ring.json"
    assert _run("ring", "create", str(out), *NODES, "--partition-power", "30") == 1
    assert "partition_power" in capsys.readouterr().err
    assert not out.exists()


def test_place_and_show_report_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run("ring", "show", str(tmp_path / "absent.json")) == 1
    assert "cannot read" in capsys.readouterr().err
    out = tmp_path / "ring.json"
    _run("ring", "create", str(out), *NODES)
    assert _run("ring", "place", str(out), "no-key") == 1
    assert "BUCKET/KEY" in capsys.readouterr().err


def test_node_changes_write_the_next_epoch_and_say_what_moves(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "ring.json"
    _run("ring", "create", str(out), *NODES[:3], "--partition-power", "8")
    capsys.readouterr()
    before = Ring(load_ring_file(out))

    assert _run("ring", "add-node", str(out), "--node", "id=n5,url=http://127.0.0.1:9005") == 0
    after = Ring(load_ring_file(out))
    assert after.epoch == 2 and [n.id for n in after.nodes] == ["n1", "n2", "n3", "n5"]
    moved = sum(
        len({n.id for n in after.primaries(p)} - {n.id for n in before.primaries(p)})
        for p in range(256)
    )
    assert moved > 0 and f"{moved} of 768 replica slots move" in capsys.readouterr().out
    # Only the new node gains: nothing moves between the old ones.
    for p in range(256):
        gained = {n.id for n in after.primaries(p)} - {n.id for n in before.primaries(p)}
        assert gained <= {"n5"}

    assert _run("ring", "set-weight", str(out), "n2", "3") == 0
    spec = load_ring_file(out)
    assert spec.epoch == 3 and {n.id: n.weight for n in spec.nodes}["n2"] == 3.0

    assert _run("ring", "remove-node", str(out), "n1") == 0
    spec = load_ring_file(out)
    assert spec.epoch == 4 and [n.id for n in spec.nodes] == ["n2", "n3", "n5"]


def test_a_change_that_changes_nothing_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "ring.json"
    _run("ring", "create", str(out), *NODES[:3])
    assert _run("ring", "remove-node", str(out), "nope") == 1
    assert _run("ring", "set-weight", str(out), "n1", "1") == 1
    assert "changes nothing" in capsys.readouterr().err
    assert load_ring_file(out).epoch == 1
