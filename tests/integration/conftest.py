"""Fixtures for integration tests that need an S3 server: one SeaweedFS for the session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from s3kit import SeaweedS3


@pytest.fixture(scope="session")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedS3]:
    """A running S3 server; tests keep apart by using their own mirror prefix."""
    server = SeaweedS3(tmp_path_factory.mktemp("seaweedfs"))
    server.start()
    yield server
    server.stop()
