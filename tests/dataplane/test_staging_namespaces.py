"""Staging per organization: paths, the write-back's lookup by dag id, purges and watermarks across folders, and
staging's own S3 keys (passed explicitly, never an ambient chain a connector could share)."""

from __future__ import annotations

import os

import pyarrow as pa

from django_etl.dataplane import staging as staging_module
from django_etl.dataplane.staging import Staging
from tests.support.servers import S3_KEY_ID, S3_SECRET

RUN = "manual__2025-01-02T00:00:00+00:00"


def stage(location: Staging, dag: str, run: str = RUN, status: str = "success") -> str:
    table = pa.table({"id": [1, 2]})
    info = location.write_dataset(
        location.dataset_dir(dag, run, "extract", "rows"), "rows", table.to_batches()
    )
    location.write_manifest(
        dag, run, "extract", {"status": status, "task_id": "extract", "outputs": [info.as_manifest()]}
    )
    return info.uri


def test_staging_organization_is_a_folder_of_its_own(tmp_path):
    url = str(tmp_path / "staging")
    uri = stage(Staging(url, organization="4f1c"), "pipeline_a")
    assert uri.startswith(f"{url}/org_4f1c/pipeline_a/")
    assert Staging(url).find_dataset("pipeline_a", RUN, "rows") is None  # not at the top either


def test_staging_module_functions_find_the_organization_by_dag_id(tmp_path, settings):
    settings.ETL_STAGING_URL = str(tmp_path / "staging")
    stage(Staging(organization="org-a"), "pipeline_a")
    stage(Staging(organization="org-b"), "pipeline_b")
    assert staging_module.read_manifest("pipeline_b", RUN, "extract")["status"] == "success"
    assert staging_module.read_manifest("pipeline_b", RUN, "extract", organization="org-a") is None
    staging_module.delete_run("pipeline_b", RUN)
    assert staging_module.read_manifest("pipeline_b", RUN, "extract") is None
    assert staging_module.read_manifest("pipeline_a", RUN, "extract") is not None


def test_staging_watermarks_are_per_organization_with_the_old_layout_still_read(tmp_path):
    url = str(tmp_path / "staging")
    ours = Staging(url, organization="org-a")
    ours.write_manifest(
        "dag",
        RUN,
        "extract",
        {"status": "success", "task_id": "extract", "watermark": {"column": "t", "value": 5}},
    )
    ours.delete_run("dag", RUN)
    assert ours.read_watermark("dag", "extract")["value"] == 5
    assert Staging(url, organization="org-b").read_watermark("dag", "extract") is None
    Staging(url).write_json(Staging(url).watermark_path("old", "extract"), {"column": "t", "value": 1})
    assert ours.read_watermark("old", "extract")["value"] == 1  # promoted before organization folders


def test_staging_purge_reaches_every_organization_folder(tmp_path):
    url = str(tmp_path / "staging")
    stage(Staging(url, organization="org-a"), "dag_a", status="failed")
    stage(Staging(url), "legacy_dag", status="failed")
    deleted = Staging(url).purge_expired(0, now=4_000_000_000)
    assert sorted(os.path.basename(os.path.dirname(p)) for p in deleted) == ["dag_a", "legacy_dag"]
    assert Staging(url, organization="org-a").read_manifest("dag_a", RUN, "extract") is None


def test_staging_s3_uses_its_own_keys_from_settings(s3_bucket, monkeypatch, settings):
    for variable in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no instance-profile lookup off loopback
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    settings.ETL_STAGING_S3_ENDPOINT_URL = s3_bucket["endpoint"]
    settings.ETL_STAGING_S3_ACCESS_KEY_ID = S3_KEY_ID
    settings.ETL_STAGING_S3_SECRET_ACCESS_KEY = S3_SECRET
    location = Staging(f"s3://{s3_bucket['name']}/staging", organization="org-a")
    uri = stage(location, "dag")
    assert uri.startswith(f"s3://{s3_bucket['name']}/staging/org_org-a/dag/")
    assert location.reader(uri).count_rows() == 2
