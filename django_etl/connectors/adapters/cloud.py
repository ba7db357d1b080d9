"""S3-compatible object storage connectors (AWS, MinIO, any S3 API through ``endpoint_url``)."""

from __future__ import annotations

import fnmatch
import os
import tempfile
from collections.abc import Iterable, Iterator
from typing import Any

import pyarrow as pa

from django_etl.connectors.adapters.base import Adapter
from django_etl.connectors.adapters.formats import head, read_sources, write_stream

PERMANENT_CODES = {
    "403",
    "404",
    "AccessDenied",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "NoSuchBucket",
    "NoSuchKey",
}


class CloudAdapter(Adapter):
    connector_type = "cloud"

    def client(self):
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=str(self.config["endpoint_url"]) if self.config.get("endpoint_url") else None,
            region_name=self.config.get("region") or "us-east-1",
            aws_access_key_id=self.secret.get("access_key_id") or None,
            aws_secret_access_key=self.secret.get("secret_access_key") or None,
            config=Config(
                retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=10, read_timeout=60
            ),
        )

    @property
    def bucket(self) -> str:
        return self.config["bucket"]

    def key(self, path: str) -> str:
        prefix = self.config.get("prefix", "").strip("/")
        path = path.lstrip("/")
        if ".." in path.split("/"):
            raise self.fail(f"path {path!r} may not contain '..'")
        return f"{prefix}/{path}" if prefix else path

    def _call(self, what: str, function, *args, **kwargs):
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return function(*args, **kwargs)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "error")
            raise self.fail(
                f"{what} in bucket {self.bucket!r} failed: {code}", retryable=code not in PERMANENT_CODES
            ) from None
        except BotoCoreError as exc:
            raise self.fail(f"{what} failed: {type(exc).__name__}", retryable=True) from None

    def matches(self, pattern: str) -> list[str]:
        """Object keys under the prefix matching a path or glob."""
        wanted = self.key(pattern)
        literal = wanted.split("*", 1)[0].split("?", 1)[0].split("[", 1)[0]
        client = self.client()
        keys: list[str] = []
        paginator = client.get_paginator("list_objects_v2")
        for page in self._call(
            "listing", lambda: list(paginator.paginate(Bucket=self.bucket, Prefix=literal))
        ):
            keys.extend(item["Key"] for item in page.get("Contents", []))
        return sorted(k for k in keys if fnmatch.fnmatchcase(k, wanted))

    def check(self) -> str:
        client = self.client()
        self._call("HeadBucket", client.head_bucket, Bucket=self.bucket)
        return f"bucket {self.bucket!r} reachable"

    def read(self, request: dict[str, Any], batch_size: int) -> Iterator[pa.RecordBatch]:
        pattern = request.get("path")
        if not pattern:
            raise self.fail("the extract needs 'path' (an object key or glob under the prefix)")
        keys = self.matches(pattern)
        if not keys:
            raise self.fail(f"no object matches {pattern!r} in bucket {self.bucket!r}")
        fmt = request.get("format") or self.config.get("format", "parquet")
        try:
            yield from read_sources(
                self._downloads(keys, fmt),
                fmt,
                batch_size=batch_size,
                delimiter=request.get("delimiter", ","),
            )
        except ValueError as exc:
            raise self.fail(str(exc)) from None

    def _downloads(self, keys: list[str], fmt: str) -> Iterator[tuple[str, str]]:
        """Each object as a local temporary file, kept until the next one is asked for."""
        client = self.client()
        for key in keys:
            # Objects go to a temporary file, not memory: Parquet needs random access, and memory stays flat.
            with tempfile.NamedTemporaryFile(suffix=f".{fmt}") as local:
                self._call(f"download of {key!r}", client.download_fileobj, self.bucket, key, local)
                local.flush()
                yield local.name, f"object {key!r}"

    def sample(self, limit: int = 10) -> pa.Table:
        fmt = self.config.get("format", "parquet")
        keys = self.matches(f"*.{fmt}") or self.matches(f"*/*.{fmt}")
        if not keys:
            raise self.fail(f"no .{fmt} object under the prefix to preview")
        prefix = self.config.get("prefix", "").strip("/")
        relative = keys[0][len(prefix) + 1 :] if prefix else keys[0]
        return head(self.read({"path": relative, "format": fmt}, limit), limit)

    def write(self, path: str, batches: Iterable[pa.RecordBatch], schema: pa.Schema, fmt: str | None) -> int:
        """Write to a temporary file, then one upload: the object appears whole or not at all."""
        fmt = fmt or self.config.get("format", "parquet")
        key = self.key(path)
        handle, temporary = tempfile.mkstemp(suffix=f".{fmt}")
        os.close(handle)
        try:
            rows = write_stream(temporary, batches, fmt, schema)
            client = self.client()
            self._call(f"upload of {key!r}", client.upload_file, temporary, self.bucket, key)
        finally:
            os.unlink(temporary)
        return rows
