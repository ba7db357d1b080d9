"""Extract from files, APIs and object storage into staged Parquet; incremental by watermark; failure modes."""

from __future__ import annotations

import pytest

from airflow_plugin.steps.context import StepFailure
from django_etl.errors import ConnectorError
from tests.airflow_plugin.steps.conftest import file_runtime
from tests.support.servers import api_runtime, cloud_runtime


def extract(make_run, connector, run_id="r1", **config):
    return make_run(
        "extract",
        {"connector": "src", **config},
        connectors={"src": connector},
        output="rows",
        task_id="extract_rows",
        run_id=run_id,
    )


def test_extract_file_stages_parquet_with_schema_and_rows(file_root, make_run, execute, staging):
    (file_root / "o.csv").write_text("id,name,paid\n1,a,true\n2,b,false\n")
    manifest = execute(extract(make_run, file_runtime(file_root), path="o.csv"))
    output = manifest["outputs"][0]
    assert output["rows"] == 2 and output["dataset"] == "rows"
    assert output["schema"] == [
        {"name": "id", "type": "int64"},
        {"name": "name", "type": "string"},
        {"name": "paid", "type": "bool"},
    ]
    assert staging.open_dataset(output["uri"]).to_table().column("name").to_pylist() == ["a", "b"]
    assert manifest["metrics"]["rows_out"] == 2 and manifest["metrics"]["bytes"] > 0


def test_extract_api_http_500_then_success(api_server, make_run, execute):
    runtime = api_runtime(api_server.base_url)
    manifest = execute(extract(make_run, runtime, endpoint="flaky", records_path="results"))
    assert manifest["outputs"][0]["rows"] == 5


def test_extract_watermark_takes_only_newer_rows_after_a_successful_run(
    file_root, make_run, execute, staging
):
    (file_root / "e.csv").write_text("id,at\n1,2025-01-01T00:00:00Z\n2,2025-01-02T00:00:00Z\n")
    first = execute(extract(make_run, file_runtime(file_root), path="e.csv", watermark_column="at"))
    assert first["watermark"] == {"column": "at", "value": "2025-01-02T00:00:00+00:00"}
    staging.delete_run("pipeline_steps_test", "r1")  # the run succeeded: its watermark is promoted
    (file_root / "e.csv").write_text(
        "id,at\n1,2025-01-01T00:00:00Z\n2,2025-01-02T00:00:00Z\n3,2025-01-03T00:00:00Z\n"
    )
    second = execute(
        extract(make_run, file_runtime(file_root), run_id="r2", path="e.csv", watermark_column="at")
    )
    assert second["outputs"][0]["rows"] == 1
    assert second["watermark"]["value"] == "2025-01-03T00:00:00+00:00"


def test_extract_watermark_of_a_failed_run_is_not_used(file_root, make_run, execute, staging):
    (file_root / "e.csv").write_text("id\n1\n2\n")
    execute(extract(make_run, file_runtime(file_root), path="e.csv", watermark_column="id"))
    # No delete_run: the run did not succeed, so the next run extracts everything again.
    again = execute(
        extract(make_run, file_runtime(file_root), run_id="r2", path="e.csv", watermark_column="id")
    )
    assert again["outputs"][0]["rows"] == 2


def test_extract_malformed_csv_fails_with_manifest(file_root, make_run, execute, staging):
    (file_root / "bad.csv").write_text("id,name\n1,a\n2,b,c\n")
    with pytest.raises(ConnectorError, match="Expected 2 columns, got 3"):
        execute(extract(make_run, file_runtime(file_root), path="bad.csv"))
    manifest = staging.read_manifest("pipeline_steps_test", "r1", "extract_rows")
    assert manifest["status"] == "failed" and "Expected 2 columns" in manifest["error"]


def test_extract_types_differing_across_files_widen(file_root, make_run, execute, staging):
    (file_root / "p1.csv").write_text("id,v\n1,1\n")
    (file_root / "p2.csv").write_text("id,v\n2,not a number\n")
    manifest = execute(extract(make_run, file_runtime(file_root), path="p*.csv"))
    assert manifest["details"]["widened"] == ["v int64 -> string"]
    assert staging.open_dataset(manifest["outputs"][0]["uri"]).to_table().column("v").to_pylist() == [
        "1",
        "not a number",
    ]


def test_extract_from_object_storage(s3_bucket, make_run, execute):
    s3_bucket["client"].put_object(Bucket=s3_bucket["name"], Key="landing/day=1/x.csv", Body=b"id\n1\n2\n3\n")
    manifest = execute(extract(make_run, cloud_runtime(s3_bucket), path="day=1/*.csv"))
    assert manifest["outputs"][0]["rows"] == 3


def test_extract_unknown_watermark_column_fails(file_root, make_run, execute):
    (file_root / "e.csv").write_text("id\n1\n")
    with pytest.raises(StepFailure, match="watermark column 'nope' is not in the extracted columns"):
        execute(extract(make_run, file_runtime(file_root), path="e.csv", watermark_column="nope"))
