"""Staging on a local folder and on an S3 API server: datasets, manifests, run deletion, purge of old runs."""

from __future__ import annotations

import os
import time
from io import StringIO

import pyarrow as pa
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from django_etl.dataplane.staging import Staging, ensure_location, safe_name
from tests.support.servers import S3_KEY_ID, S3_SECRET

RUN = "scheduled__2025-01-02T00:00:00+00:00"


def batches(n: int, size: int = 1000):
    for start in range(0, n, size):
        yield pa.record_batch({"id": pa.array(range(start, min(n, start + size)), pa.int64())})


def test_staging_round_trip_of_dataset_and_manifest(tmp_path):
    staging = Staging(str(tmp_path))
    info = staging.write_dataset(staging.dataset_dir("dag", RUN, "t1", "rows"), "rows", batches(5000))
    assert info.rows == 5000 and info.schema == [{"name": "id", "type": "int64"}]
    assert sum(b.num_rows for b in staging.read_batches(info.uri)) == 5000
    staging.write_manifest(
        "dag", RUN, "t1", {"task_id": "t1", "status": "success", "outputs": [info.as_manifest()]}
    )
    assert staging.find_dataset("dag", RUN, "rows")["rows"] == 5000
    assert (tmp_path / "dag" / safe_name(RUN) / "t1" / "manifest.json").exists()


def test_staging_retry_replaces_previous_parts(tmp_path):
    staging = Staging(str(tmp_path))
    directory = staging.dataset_dir("dag", RUN, "t1", "rows")
    staging.write_dataset(directory, "rows", batches(10))
    info = staging.write_dataset(directory, "rows", batches(3))
    assert staging.open_dataset(info.uri).count_rows() == 3


def test_staging_types_widen_mid_dataset(tmp_path):
    staging = Staging(str(tmp_path))

    def drifting():
        yield pa.record_batch({"id": pa.array([1])})
        yield pa.record_batch({"id": pa.array(["x"])})

    info = staging.write_dataset(staging.dataset_dir("dag", RUN, "t", "d"), "d", drifting())
    assert info.widened == ["id int64 -> string"]
    assert staging.reader(info.uri).to_table().column("id").to_pylist() == ["1", "x"]


def test_staging_delete_run_promotes_watermarks(tmp_path):
    staging = Staging(str(tmp_path))
    staging.write_manifest(
        "dag",
        RUN,
        "extract",
        {"task_id": "extract", "status": "success", "watermark": {"column": "at", "value": "2025-01-02"}},
    )
    staging.delete_run("dag", RUN)
    assert not (tmp_path / "dag" / safe_name(RUN)).exists()
    assert staging.read_watermark("dag", "extract") == {"column": "at", "value": "2025-01-02", "run_id": RUN}


def test_purge_staging_deletes_only_expired_runs(tmp_path):
    staging = Staging(str(tmp_path))
    for run in ("old", "new"):
        staging.write_manifest("dag", run, "t", {"task_id": "t", "status": "failed"})
    old = time.time() - 10 * 86_400
    for root, dirs, files in os.walk(tmp_path / "dag" / "old"):
        for name in dirs + files:
            os.utime(os.path.join(root, name), (old, old))
    os.utime(tmp_path / "dag" / "old", (old, old))
    out = StringIO()
    call_command("purge_staging", "--days", "7", "--staging", str(tmp_path), stdout=out)
    assert "1 run folder(s) older than 7 day(s) deleted" in out.getvalue()
    assert not (tmp_path / "dag" / "old").exists() and (tmp_path / "dag" / "new").exists()


def test_staging_on_s3_api_server(s3_bucket, monkeypatch, settings):
    settings.ETL_STAGING_S3_ENDPOINT_URL = s3_bucket["endpoint"]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", S3_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", S3_SECRET)
    staging = Staging(f"s3://{s3_bucket['name']}/staging")
    info = staging.write_dataset(staging.dataset_dir("dag", RUN, "t1", "rows"), "rows", batches(2500))
    assert info.uri.startswith(f"s3://{s3_bucket['name']}/staging/dag/")
    staging.write_manifest(
        "dag", RUN, "t1", {"task_id": "t1", "status": "success", "outputs": [info.as_manifest()]}
    )
    assert Staging(f"s3://{s3_bucket['name']}/staging").read_manifest("dag", RUN, "t1")["status"] == "success"
    assert staging.open_dataset(info.uri).count_rows() == 2500
    staging.delete_run("dag", RUN)
    assert staging.read_manifest("dag", RUN, "t1") is None


def test_purge_staging_refuses_negative_retention(tmp_path):
    with pytest.raises(CommandError, match="--days must be zero or more, not -1"):
        call_command("purge_staging", "--days", "-1", "--staging", str(tmp_path))


def test_purge_staging_retention_defaults_to_the_setting(tmp_path, settings):
    settings.ETL_STAGING_RETENTION_DAYS = 0
    Staging(str(tmp_path)).write_manifest("dag", "any", "t", {"task_id": "t", "status": "failed"})
    out = StringIO()
    call_command("purge_staging", "--staging", str(tmp_path), stdout=out)
    assert "1 run folder(s) older than 0 day(s) deleted" in out.getvalue()


def test_staging_url_comes_from_the_setting(tmp_path, settings):
    settings.ETL_STAGING_URL = str(tmp_path / "configured")
    assert Staging().root == str(tmp_path / "configured")


def test_ensure_location_creates_a_missing_bucket_once(s3_server, settings):
    import uuid

    import boto3

    settings.ETL_STAGING_S3_ENDPOINT_URL = s3_server
    settings.ETL_STAGING_S3_ACCESS_KEY_ID, settings.ETL_STAGING_S3_SECRET_ACCESS_KEY = S3_KEY_ID, S3_SECRET
    bucket = f"etl-fresh-{uuid.uuid4().hex[:8]}"
    client = boto3.client(
        "s3",
        endpoint_url=s3_server,
        region_name="us-east-1",
        aws_access_key_id=S3_KEY_ID,
        aws_secret_access_key=S3_SECRET,
    )
    assert ensure_location(f"s3://{bucket}/staging") == f"s3://{bucket}/staging"
    assert ensure_location(f"s3://{bucket}/staging/") == f"s3://{bucket}/staging"  # again: no error
    assert bucket in {b["Name"] for b in client.list_buckets()["Buckets"]}
    staging = Staging(f"s3://{bucket}/staging")
    info = staging.write_dataset(staging.dataset_dir("dag", RUN, "t1", "rows"), "rows", batches(3))
    assert info.rows == 3 and info.uri.startswith(f"s3://{bucket}/staging/")


def test_ensure_location_creates_a_local_folder(tmp_path):
    target = tmp_path / "deep" / "staging"
    assert ensure_location(str(target)) == str(target)
    assert target.is_dir()
