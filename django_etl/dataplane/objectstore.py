"""S3-compatible object storage (AWS, MinIO, any S3 API through ``endpoint_url``): read, write, check, preview."""

from __future__ import annotations

import fnmatch
import os
import tempfile
from collections.abc import Iterable, Iterator
from typing import Any, Literal

import pyarrow as pa
from pydantic import Field, HttpUrl, field_validator

from django_etl import conf
from django_etl.configmodel import FileFormat, Strict
from django_etl.dataplane.base import Adapter, WholeFileTarget
from django_etl.dataplane.formats import head, read_sources, reading_options, write_stream
from django_etl.dataplane.netpolicy import Allowance, NetworkRefused, refusal_at_save, url_target

DEFAULT_REGION = "us-east-1"
# Secret keys an S3 connector reads from its credential.
CREDENTIAL_KEYS = ("access_key_id", "secret_access_key")

PERMANENT_CODES = {
    "403",
    "404",
    "AccessDenied",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "NoSuchBucket",
    "NoSuchKey",
}


class CloudConnectorConfig(Strict):
    provider: Literal["s3"] = "s3"
    bucket: str = Field(..., min_length=3, max_length=63, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*[A-Za-z0-9]$")
    prefix: str = ""
    endpoint_url: HttpUrl | None = Field(None, description="For MinIO or any S3-compatible API.")
    region: str | None = Field(None, pattern=r"^[a-z0-9-]{1,40}$")
    format: FileFormat = "parquet"

    @field_validator("endpoint_url")
    @classmethod
    def server_only(cls, url: HttpUrl | None) -> HttpUrl | None:
        # botocore keeps an endpoint's path in front of every request ("https://s3.example/staging" + bucket
        # "x" reads bucket "staging"): a path would name a bucket of its own, past the check of ``bucket``.
        if url is not None and ((url.path or "/") != "/" or url.query or url.fragment or url.username):
            raise ValueError(
                "give the server only (scheme, host and port): a path, query or user in the endpoint would "
                "address another bucket than 'bucket'"
            )
        return url

    def credential_keys(self) -> tuple[str, ...]:
        return CREDENTIAL_KEYS

    def endpoint(self) -> str | None:
        # HttpUrl adds a "/" to a bare host; botocore wants the endpoint as typed.
        return str(self.endpoint_url).rstrip("/") if self.endpoint_url else None


def staging_bucket() -> str | None:
    """The bucket of s3:// staging (ETL_STAGING_URL), which no connector may name."""
    url = str(conf.value("ETL_STAGING_URL"))
    if not url.startswith("s3://"):
        return None
    return url.removeprefix("s3://").split("/", 1)[0] or None


def staging_refusal(config: CloudConnectorConfig) -> str | None:
    bucket = staging_bucket()
    if bucket is None:
        return None
    if config.bucket.lower() == bucket.lower():
        return f"bucket {config.bucket!r} is the platform's staging bucket, which connectors may never reach"
    host = (config.endpoint_url.host or "").lower() if config.endpoint_url else ""
    if host.startswith(f"{bucket.lower()}."):  # a virtual-hosted endpoint: the host names the bucket
        return f"endpoint {host!r} names the platform's staging bucket, which connectors may never reach"
    return None


class ObjectStoreAdapter(WholeFileTarget, Adapter):
    connector_type = "cloud"
    config_model = CloudConnectorConfig
    config: CloudConnectorConfig

    @classmethod
    def refusals(cls, config: CloudConnectorConfig, allowance: Allowance) -> list[tuple[str, str]]:
        found = []
        reason = staging_refusal(config)
        if reason:
            found.append(
                ("config.endpoint_url" if reason.startswith("endpoint") else "config.bucket", reason)
            )
        endpoint = config.endpoint()
        reason = refusal_at_save(allowance, *url_target(endpoint), key="endpoint_url") if endpoint else None
        if reason:
            found.append(("config.endpoint_url", reason))
        return found

    def client(self):
        """An S3 client with the connector's own keys, or unsigned (public buckets): never the worker's.

        No credential chain (environment, config files, instance profile), no endpoint from the environment,
        and every request pinned to a checked address of the endpoint's host (``pinning``).
        """
        import boto3.session
        from botocore import UNSIGNED
        from botocore.config import Config

        from django_etl.dataplane.pinning import PinnedBotocoreSession

        reason = staging_refusal(self.config)
        if reason:
            raise self.fail(reason)
        endpoint = self.config.endpoint()
        policy = self.network()
        key_id, secret_key = self.secret.get("access_key_id"), self.secret.get("secret_access_key")
        signed = bool(key_id and secret_key)
        config = Config(
            retries={"max_attempts": 3, "mode": "standard"},
            connect_timeout=10,
            read_timeout=60,
            ignore_configured_endpoint_urls=True,
            proxies={},
            **({} if signed else {"signature_version": UNSIGNED}),
        )
        client = boto3.session.Session().client(  # a session of its own, never the module's default one
            "s3",
            endpoint_url=endpoint,
            region_name=self.config.region or DEFAULT_REGION,
            aws_access_key_id=key_id if signed else None,
            aws_secret_access_key=secret_key if signed else None,
            config=config,
        )
        client._endpoint.http_session.close()
        client._endpoint.http_session = PinnedBotocoreSession(
            policy, url_target(endpoint)[0] if endpoint else None, timeout=(10, 60)
        )
        return client

    @property
    def bucket(self) -> str:
        return self.config.bucket

    def key(self, path: str) -> str:
        prefix = self.config.prefix.strip("/")
        path = path.lstrip("/")
        if ".." in path.split("/"):
            raise self.fail(f"path {path!r} may not contain '..'")
        return f"{prefix}/{path}" if prefix else path

    def _call(self, what: str, function, *args, **kwargs):
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return function(*args, **kwargs)
        except NetworkRefused as exc:
            raise self.fail(str(exc)) from None
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
        fmt = request.get("format") or self.config.format
        try:
            yield from read_sources(
                self._downloads(keys, fmt),
                fmt,
                batch_size=batch_size,
                **reading_options(request),
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
        fmt = self.config.format
        keys = self.matches(f"*.{fmt}") or self.matches(f"*/*.{fmt}")
        if not keys:
            raise self.fail(f"no .{fmt} object under the prefix to preview")
        prefix = self.config.prefix.strip("/")
        relative = keys[0][len(prefix) + 1 :] if prefix else keys[0]
        return head(self.read({"path": relative, "format": fmt}, limit), limit)

    def write(self, path: str, batches: Iterable[pa.RecordBatch], schema: pa.Schema, fmt: str | None) -> int:
        """Write to a temporary file, then one upload: the object appears whole or not at all."""
        fmt = fmt or self.config.format
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
