"""Reading py-spy's raw stacks: each sample goes in a bucket by the source line it was on (fsync,
hashing, file and socket syscalls, executor hand-offs, aiohttp, the event loop...), split by
thread role (event loop or worker thread), and summarised as markdown."""

from __future__ import annotations

import json
import linecache
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.workloads import human_size

RATE_HZ = 200
PHASES_FILE = "phases.json"  # what ran while the stacks were recorded, and how fast

IDLE = "idle"
HANDOFF = "executor hand-offs (submit a job, wake the loop)"

# (bucket, test on the leaf frame's file, function and source line), first match wins.
_RULES: tuple[tuple[str, str, str, str], ...] = (
    # bucket, file contains, function contains, source line contains
    (IDLE, "selectors.py", "select", ""),
    (IDLE, "threading.py", "wait", ""),
    (IDLE, "queue.py", "get", ""),
    (IDLE, "concurrent/futures/thread.py", "_worker", ""),
    (HANDOFF, "concurrent/futures/thread.py", "submit", ""),
    (HANDOFF, "selector_events.py", "_write_to_self", ""),
    (HANDOFF, "threading.py", "notify", ""),
    # A C function handed straight to run_in_executor (aiohttp's FileResponse stat/open, a
    # file's read or close) shows as the worker's own frame.
    ("file syscalls (write, read, open, stat, rename, listdir)", "futures/thread.py", "run", ""),
    ("fsync", "", "", "fsync"),
    ("hashing (md5 / sha256 / hmac)", "", "", "md5"),
    ("hashing (md5 / sha256 / hmac)", "", "", "sha"),
    ("hashing (md5 / sha256 / hmac)", "", "", "hmac"),
    ("hashing (md5 / sha256 / hmac)", "hmac.py", "", ""),
    ("hashing (md5 / sha256 / hmac)", "hashlib", "", ""),
    ("catalog (SQLite; each commit fsyncs its WAL)", "sqlite_catalog.py", "", ""),
    ("file syscalls (write, read, open, stat, rename, listdir)", "storage_node/", "", "write"),
    ("file syscalls (write, read, open, stat, rename, listdir)", "storage_node/", "", "read"),
    ("file syscalls (write, read, open, stat, rename, listdir)", "storage_node/", "", "open"),
    ("file syscalls (write, read, open, stat, rename, listdir)", "storage_node/", "", "rename"),
    ("file syscalls (write, read, open, stat, rename, listdir)", "storage_node/", "", "listdir"),
    ("file syscalls (write, read, open, stat, rename, listdir)", "storage_node/", "", "unlink"),
    ("file syscalls (write, read, open, stat, rename, listdir)", "pathlib.py", "", ""),
    ("socket syscalls (send, recv, sendfile)", "", "", ".send("),
    ("socket syscalls (send, recv, sendfile)", "", "", "sendfile"),
    ("socket syscalls (send, recv, sendfile)", "", "", ".recv"),
    ("socket syscalls (send, recv, sendfile)", "", "", "sendmsg"),
    ("socket syscalls (send, recv, sendfile)", "", "", "writelines"),
    ("metrics (prometheus_client)", "prometheus_client", "", ""),
    ("asyncio machinery (loop, tasks, queues, futures)", "selectors.py", "", ""),
    ("aiohttp (HTTP parsing, streams, payloads)", "aiohttp/", "", ""),
    ("asyncio machinery (loop, tasks, queues, futures)", "asyncio/", "", ""),
    ("shardgate Python code", "gateway/", "", ""),
    ("shardgate Python code", "storage_node/", "", ""),
    ("shardgate Python code", "shardgate/", "", ""),
    ("shardgate Python code", "ring/", "", ""),
)


@dataclass
class Frame:
    function: str
    file: str
    line: int

    @classmethod
    def parse(cls, text: str) -> Frame:
        function, _, where = text.rpartition(" (")
        file, _, line = where.rstrip(")").rpartition(":")
        return cls(function, file, int(line) if line.isdigit() else 0)

    def source(self) -> str:
        try:
            return linecache.getline(self.file, self.line).strip()
        except (ValueError, OSError):  # py-spy may name a frame's file with garbage
            return ""

    def short(self) -> str:
        tail = "/".join(Path(self.file).parts[-2:])
        return f"{self.function} ({tail}:{self.line})"


def bucket_of(leaf: Frame) -> str:
    source = leaf.source()
    for bucket, in_file, in_function, in_source in _RULES:
        if (
            in_file in leaf.file
            and in_function in leaf.function
            and (not in_source or in_source in source)
        ):
            return bucket
    return "other (stdlib, logging, json...)"


@dataclass
class Profile:
    """Samples of one process, split by thread role: the event loop and the worker threads."""

    loop: Counter[str] = field(default_factory=Counter)
    workers: Counter[str] = field(default_factory=Counter)
    leaves: Counter[str] = field(default_factory=Counter)
    loop_total: int = 0

    @classmethod
    def from_raw(cls, lines: Iterable[str]) -> Profile:
        profile = cls()
        for line in lines:
            stack, _, count_text = line.rstrip().rpartition(" ")
            if not stack or not count_text.isdigit():
                continue
            count = int(count_text)
            frames = [Frame.parse(text) for text in stack.split(";")]
            bucket = bucket_of(frames[-1])
            on_loop = "threading.py" not in frames[0].file
            (profile.loop if on_loop else profile.workers)[bucket] += count
            if on_loop:
                profile.loop_total += count
            if bucket != IDLE:
                leaf = frames[-1]
                profile.leaves[f"{leaf.short()} `{leaf.source()[:60]}`"] += count
        return profile


def _percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.0f}%" if whole else "n/a"


def summarize(name: str, profile: Profile, seconds: float, loops: int = 1) -> list[str]:
    busy_loop = profile.loop_total - profile.loop[IDLE]
    worker_busy = sum(n for b, n in profile.workers.items() if b != IDLE)
    span = f"{seconds:.1f} s" if loops == 1 else f"{loops} x {seconds:.1f} s"
    lines = [
        f"**{name}** — event loop{'s' if loops > 1 else ''} busy "
        f"{_percent(busy_loop, profile.loop_total)} of {span}; worker threads busy for "
        f"{worker_busy / RATE_HZ:.1f} thread-seconds.",
        "",
        "| where | share of event-loop busy time | worker-thread seconds |",
        "|---|---|---|",
    ]
    buckets = {b for b in (*profile.loop, *profile.workers) if b != IDLE}
    for bucket in sorted(buckets, key=lambda b: -(profile.loop[b] + profile.workers[b])):
        lines.append(
            f"| {bucket} | {_percent(profile.loop[bucket], busy_loop)} | "
            f"{profile.workers[bucket] / RATE_HZ:.2f} |"
        )
    lines += ["", "Hottest lines (all threads, busy samples):", ""]
    total_busy = busy_loop + worker_busy
    for leaf, count in profile.leaves.most_common(6):
        lines.append(f"- {_percent(count, total_busy)} {leaf}")
    return [*lines, ""]


def raw_path(workdir: Path, workload: str, phase: str, process: str) -> Path:
    return workdir / f"{workload}-{phase}-{process.replace(' ', '-')}.txt"


def render(workdir: Path) -> str:
    """The report's profile section, from the raw stacks and phases.json in `workdir`."""
    phases: list[dict[str, Any]] = json.loads((workdir / PHASES_FILE).read_text())
    out = [
        f"py-spy at {RATE_HZ} Hz on the gateway and on the nodes (the three nodes' samples "
        "added up), all threads, idle ones included, one recording per phase. Each sample is "
        "bucketed by the source line it was on: a C call (os.fsync, md5.update, socket.send) "
        "shows as the Python line that made it. A thread blocked in fsync counts as busy: it "
        "holds a request. On a machine shared with other work, a thread waiting for a CPU is "
        "sampled where it was preempted, so under heavy load the busy shares include run-queue "
        "waits. Regenerate with `python -m bench.profile --keep DIR`.",
        "",
    ]
    for p in phases:
        out += [
            f"### {p['workload']} ({human_size(p['size'])} x {p['count']}, concurrency "
            f"{p['concurrency']}) {p['phase'].upper()}: {p['mib_per_s']:.1f} MiB/s, "
            f"{p['ops_per_s']:.0f} ops/s under the profiler",
            "",
        ]
        groups = p["processes"]  # {"nodes": ["node n1", ...]} or a list of single processes
        if isinstance(groups, list):
            groups = {name: [name] for name in groups}
        for group, members in groups.items():
            lines: list[str] = []
            for member in members:
                raw = raw_path(workdir, p["workload"], p["phase"], member)
                lines += raw.read_text().splitlines() if raw.exists() else []
            out += summarize(group, Profile.from_raw(lines), p["seconds"], len(members))
    return "\n".join(out)
