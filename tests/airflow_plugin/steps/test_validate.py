"""Validate: each check kind, severities, sample keys only (never whole rows), results kept on failure."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from airflow_plugin.steps.context import StepFailure
from tests.airflow_plugin.steps.conftest import file_runtime

CSV = (
    "id,email,status,amount,updated_at\n"
    "1,a@x.io,paid,10,2025-01-02T10:00:00Z\n"
    "2,,paid,-5,2025-01-02T11:00:00Z\n"
    "3,c@x.io,weird,20,2025-01-02T12:00:00Z\n"
    "3,not-an-email,paid,30,2025-01-02T13:00:00Z\n"
)


@pytest.fixture
def staged(file_root, make_run, execute):
    (file_root / "d.csv").write_text(CSV)
    execute(
        make_run(
            "extract",
            {"connector": "landing", "path": "d.csv"},
            connectors={"landing": file_runtime(file_root)},
            output="data_in",
            task_id="extract",
        )
    )


def validate(make_run, checks, **extra):
    return make_run(
        "validate",
        {"key_columns": ["id"], "checks": checks, **extra},
        inputs=["data_in"],
        task_id="check",
        interval=(datetime(2025, 1, 2, tzinfo=UTC), datetime(2025, 1, 3, tzinfo=UTC)),
    )


def results(staging):
    manifest = staging.read_manifest("pipeline_steps_test", "scheduled__2025-01-02T00:00:00+00:00", "check")
    return manifest, {c["name"]: c for c in manifest["checks"]}


def test_validate_every_check_kind_as_warnings(staged, make_run, execute, staging):
    checks = [
        {"check": "row_count", "min": 1, "max": 3, "name": "rows"},
        {"check": "not_null", "columns": ["email"], "name": "email_present"},
        {"check": "unique", "columns": ["id"], "name": "id_unique"},
        {"check": "accepted_values", "column": "status", "values": ["paid", "void"], "name": "status_ok"},
        {"check": "range", "column": "amount", "min": 0, "name": "amount_positive"},
        {"check": "regex", "column": "email", "pattern": "^[^@]+@[^@]+$", "name": "email_shape"},
        {"check": "freshness", "column": "updated_at", "max_age_hours": 12, "name": "fresh"},
        {"check": "custom_sql", "sql": "SELECT * FROM data WHERE amount > 25", "name": "big"},
    ]
    execute(validate(make_run, [{**c, "severity": "warning"} for c in checks]))
    manifest, by_name = results(staging)
    assert manifest["status"] == "success"
    summary = {name: (c["passed"], c["failing_count"], c["sample_keys"]) for name, c in by_name.items()}
    assert summary == {
        "rows": (False, 1, []),
        "email_present": (False, 1, [2]),
        "id_unique": (False, 2, [3]),
        "status_ok": (False, 1, [3]),
        "amount_positive": (False, 1, [2]),
        "email_shape": (False, 1, [3]),
        "fresh": (True, 0, []),
        "big": (False, 1, [3]),
    }
    assert "not-an-email" not in str(manifest)  # sample keys, never whole rows
    # Warnings let the rows through: they are handed on unchanged.
    assert manifest["metrics"]["rows_in"] == manifest["metrics"]["rows_out"] == 4


def test_validate_error_fails_without_retry_and_keeps_results(staged, make_run, execute, staging):
    with pytest.raises(StepFailure, match="1 data-quality check") as caught:
        execute(
            validate(
                make_run,
                [
                    {"check": "not_null", "columns": ["id"]},
                    {"check": "range", "column": "amount", "max": 25, "name": "cap"},
                ],
            )
        )
    assert caught.value.retryable is False
    manifest, by_name = results(staging)
    assert manifest["status"] == "failed"
    assert by_name["not_null(id)"]["passed"] is True and by_name["cap"]["sample_keys"] == [3]


def test_validate_unknown_column_is_a_config_error(staged, make_run, execute):
    with pytest.raises(StepFailure, match=r"unknown column\(s\) \['nope'\]"):
        execute(validate(make_run, [{"check": "not_null", "columns": ["nope"]}]))
