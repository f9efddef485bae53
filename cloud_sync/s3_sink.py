"""The Sink over boto3: one client (thread-safe) for every pool thread, boto3's own retries off
(the outbox retries with backoff), checksums as S3 itself defines them (Content-MD5)."""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING
from urllib.parse import quote

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from cloud_sync.sink import SinkError, Stored
from shardgate.config import GatewayConfig

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


class S3Sink:
    def __init__(self, client: S3Client, bucket: str, endpoint: str, region: str) -> None:
        self._client = client
        self._bucket = bucket
        self._base = (
            f"{endpoint.rstrip('/')}/{bucket}"
            if endpoint
            else f"https://{bucket}.s3.{region}.amazonaws.com"
        )

    @classmethod
    def from_config(cls, config: GatewayConfig) -> S3Sink:
        """Build the client (slow: call it off the event loop). Credentials given in the config
        win; otherwise boto3 looks in its usual places."""
        client = boto3.session.Session().client(
            "s3",
            endpoint_url=config.mirror_endpoint or None,
            region_name=config.mirror_region,
            config=Config(
                s3={"addressing_style": "path"} if config.mirror_endpoint else {},
                retries={"max_attempts": 1, "mode": "standard"},
                connect_timeout=min(10.0, config.mirror_s3_timeout),
                read_timeout=config.mirror_s3_timeout,
                max_pool_connections=config.mirror_threads,
                # Content-MD5 is sent explicitly; the newer default (CRC trailers in
                # aws-chunked bodies) is not understood by every S3-compatible service.
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
            ),
            aws_access_key_id=config.mirror_access_key_id or None,
            aws_secret_access_key=config.mirror_secret_access_key or None,
        )
        return cls(client, config.mirror_bucket, config.mirror_endpoint, config.mirror_region)

    def url(self, key: str) -> str:
        return f"{self._base}/{quote(key)}"

    def put(self, key: str, data: bytes, md5: bytes, metadata: Mapping[str, str]) -> str:
        try:
            answer = self._client.put_object(
                Bucket=self._bucket,
                Key=key,
                Body=data,
                ContentMD5=_b64(md5),
                Metadata=dict(metadata),
            )
        except (BotoCoreError, ClientError) as exc:
            raise SinkError(f"put {key}: {exc}") from exc
        return answer["ETag"].strip('"')

    def start_multipart(self, key: str, metadata: Mapping[str, str]) -> str:
        try:
            answer = self._client.create_multipart_upload(
                Bucket=self._bucket, Key=key, Metadata=dict(metadata)
            )
        except (BotoCoreError, ClientError) as exc:
            raise SinkError(f"start multipart {key}: {exc}") from exc
        return answer["UploadId"]

    def put_part(self, key: str, upload_id: str, number: int, data: bytes, md5: bytes) -> str:
        try:
            answer = self._client.upload_part(
                Bucket=self._bucket,
                Key=key,
                UploadId=upload_id,
                PartNumber=number,
                Body=data,
                ContentMD5=_b64(md5),
            )
        except (BotoCoreError, ClientError) as exc:
            raise SinkError(f"part {number} of {key}: {exc}") from exc
        return answer["ETag"].strip('"')

    def complete_multipart(self, key: str, upload_id: str, etags: Sequence[str]) -> str:
        parts = [{"PartNumber": n, "ETag": f'"{etag}"'} for n, etag in enumerate(etags, 1)]
        try:
            answer = self._client.complete_multipart_upload(
                Bucket=self._bucket,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},  # type: ignore[typeddict-item]
            )
        except (BotoCoreError, ClientError) as exc:
            raise SinkError(f"complete {key}: {exc}") from exc
        return answer.get("ETag", "").strip('"')

    def abort_multipart(self, key: str, upload_id: str) -> None:
        try:
            self._client.abort_multipart_upload(Bucket=self._bucket, Key=key, UploadId=upload_id)
        except (BotoCoreError, ClientError) as exc:
            raise SinkError(f"abort {key}: {exc}") from exc

    def head(self, key: str) -> Stored | None:
        try:
            answer = self._client.head_object(Bucket=self._bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise SinkError(f"head {key}: {exc}") from exc
        except BotoCoreError as exc:
            raise SinkError(f"head {key}: {exc}") from exc
        return Stored(
            answer["ContentLength"], answer["ETag"].strip('"'), answer.get("Metadata", {})
        )

    def delete(self, key: str) -> None:
        try:
            self._client.delete_object(Bucket=self._bucket, Key=key)
        except (BotoCoreError, ClientError) as exc:
            raise SinkError(f"delete {key}: {exc}") from exc


def _b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode()
