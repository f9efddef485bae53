"""The report names DAMON's proactive reclaim, which evicts cached pages a GET then reads from
disk: read from a sysfs tree laid out as the kernel's (Documentation/admin-guide/mm/damon)."""

from __future__ import annotations

from pathlib import Path

from bench.machine import damon_paged_out, damon_reclaim


def kdamond(root: Path, index: int, *, state: str, action: str, applied: int) -> None:
    files = {
        "state": state,
        "contexts/0/monitoring_attrs/intervals/aggr_us": "5000000",
        "contexts/0/schemes/0/action": action,
        "contexts/0/schemes/0/access_pattern/age/min": "12",
        "contexts/0/schemes/0/quotas/bytes": str(128 << 20),
        "contexts/0/schemes/0/quotas/reset_interval_ms": "1000",
        "contexts/0/schemes/0/stats/sz_applied": str(applied),
    }
    for name, text in files.items():
        path = root / str(index) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n")


def test_a_running_pageout_scheme_is_described_and_its_reclaim_summed(tmp_path: Path) -> None:
    kdamond(tmp_path, 0, state="on", action="pageout", applied=3 << 30)
    kdamond(tmp_path, 1, state="on", action="stat", applied=7 << 30)  # watches, reclaims nothing
    kdamond(tmp_path, 2, state="off", action="pageout", applied=5 << 30)
    assert damon_reclaim(tmp_path) == (
        "on: pages out memory idle 60 s or more, up to 128 MiB per 1000 ms"
    )
    assert damon_paged_out(tmp_path) == 3 << 30
    assert (tmp_path / "0" / "state").read_text() == "update_schemes_stats"  # fresh figures


def test_no_damon_reads_as_off(tmp_path: Path) -> None:
    assert damon_reclaim(tmp_path / "absent") == "off"
    assert damon_paged_out(tmp_path / "absent") is None
    kdamond(tmp_path, 0, state="off", action="pageout", applied=1)
    assert damon_reclaim(tmp_path) == "off"
