"""Fixtures for tests that start real processes on ephemeral loopback ports."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest

from shardgate.cli.dev import DevCluster

# Replication passes and repairs move replicas on timers of their own; tests that assert exact
# placement must not race them, so they run only in clusters whose tests turn them on.
os.environ.setdefault("SHARDGATE_NODE_REPLICATE_INTERVAL", "0")
os.environ.setdefault("SHARDGATE_GATEWAY_REPAIR_INTERVAL", "0")
# Uploads are answered once W replicas acknowledge and the last finishes after; tests that read
# every replica off the nodes' disks right after an upload would race it, so the clusters these
# tests start answer after all N, and test_fault_slow_replica turns the default back on (the
# in-process functional cluster keeps it, and waits in holders() and settled()).
os.environ.setdefault("SHARDGATE_GATEWAY_LATE_REPLICA_WRITES", "0")


def _started(path: object) -> DevCluster:
    cluster = DevCluster(path, port=0)  # type: ignore[arg-type]
    cluster.start()
    return cluster


@pytest.fixture(scope="module")
def shared_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevCluster]:
    """One cluster for a whole module of tests that do not break it."""
    cluster = _started(tmp_path_factory.mktemp("cluster"))
    yield cluster
    cluster.stop()


@pytest.fixture
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevCluster]:
    """A cluster of its own, for tests that kill and restart nodes."""
    cluster = _started(tmp_path_factory.mktemp("cluster"))
    yield cluster
    cluster.stop()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    timeout = aiohttp.ClientTimeout(total=600, sock_read=60)
    async with aiohttp.ClientSession(timeout=timeout, auto_decompress=False) as client:
        yield client
