"""Fixtures for tests that start real processes on ephemeral loopback ports."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest

from shardgate.cli.dev import DevCluster


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
