"""Hostile-tenant SQL against the real transform and validate steps on real DuckDB: every escape is refused."""

from __future__ import annotations

import json

import pytest

from airflow_plugin.steps.context import StepFailure
from tests.security.conftest import Canaries

# (name, SQL with {foreign}/{staging}/{dags}/{canary} placeholders, what the refusal says)
SQL_ESCAPES = [
    ("read the environment", "SELECT * FROM read_text('/proc/self/environ')", "table function 'read_text'"),
    ("read a blob", "SELECT content FROM read_blob('/proc/self/environ')", "table function 'read_blob'"),
    ("read a file", "SELECT * FROM read_text('{canary}')", "table function 'read_text'"),
    ("another root", "SELECT * FROM read_csv('{foreign}/secret.csv')", "table function 'read_csv'"),
    ("another root by name", "SELECT * FROM '{foreign}/secret.csv'", "is not an input of this step"),
    ("staging glob", "SELECT * FROM glob('{staging}/**')", "table function 'glob'"),
    ("staged data", "SELECT * FROM read_parquet('{staging}/**/*.parquet')", "table function 'read_parquet'"),
    ("COPY into dags", "COPY (SELECT 'import os') TO '{dags}/evil.py' (FORMAT csv)", "not COPY"),
    ("second statement", "SELECT 1; COPY (SELECT 1) TO '{dags}/evil.py' (FORMAT csv)", "found 2 statements"),
    ("EXPORT", "EXPORT DATABASE '{dags}'", "must be a SELECT statement"),
    ("INSTALL", "INSTALL httpfs", "must be a SELECT statement"),
    ("LOAD", "LOAD httpfs", "must be a SELECT statement"),
    ("ATTACH", "ATTACH '{dags}/x.duckdb' AS x", "not ATTACH"),
    ("SET", "SET enable_external_access = true", "not SET"),
    ("RESET", "RESET lock_configuration", "must be a SELECT statement"),
    ("PRAGMA", "PRAGMA threads = 64", "must be a SELECT statement"),
    ("CALL", "CALL duckdb_settings()", "not CALL"),
    ("CREATE", "CREATE TABLE evil AS SELECT 1", "not CREATE"),
    ("a setting", "SELECT current_setting('temp_directory')", "function 'current_setting' is not allowed"),
    ("all settings", "SELECT * FROM duckdb_settings()", "table function 'duckdb_settings'"),
    (
        "settings by catalog",
        "SELECT * FROM system.main.duckdb_settings()",
        "call functions by their plain name",
    ),
    ("settings view", "SELECT * FROM pg_settings", "table 'pg_settings' is not an input"),
    ("catalog view", "SELECT * FROM information_schema.tables", "refer to the step's datasets"),
    ("SQL in a string", "SELECT * FROM query('SELECT 1')", "table function 'query'"),
    ("raw pointers", "SELECT * FROM arrow_scan(1, 2, 3)", "table function 'arrow_scan'"),
    ("secrets", "SELECT * FROM which_secret('s3://x', 's3')", "table function 'which_secret'"),
]


def placeholders(canaries: Canaries, staging) -> dict[str, str]:
    return {
        "foreign": str(canaries.foreign_root),
        "staging": staging.root,
        "dags": str(canaries.dags),
        "canary": str(canaries.file),
    }


def transform(make_run, config):
    return make_run("transform", config, inputs=["orders"], output="result", task_id="shape")


def refused(execute, step_run, canaries: Canaries, staging, expected: str) -> str:
    """Run the step, expect a permanent StepFailure saying ``expected``; check nothing leaked or was written."""
    with pytest.raises(StepFailure) as caught:
        execute(step_run)
    message = str(caught.value)
    assert expected in message
    assert caught.value.retryable is False
    manifest = staging.read_manifest(step_run.dag_id, step_run.run_id, step_run.task_id)
    assert manifest["status"] == "failed" and manifest["outputs"] == []
    canaries.assert_absent(message, manifest)
    canaries.assert_no_file_written()
    return message


@pytest.mark.parametrize(("name", "sql", "expected"), SQL_ESCAPES, ids=[e[0] for e in SQL_ESCAPES])
def test_transform_sql_escape_is_refused(name, sql, expected, orders, canaries, make_run, execute, staging):
    text = sql.format(**placeholders(canaries, staging))
    message = refused(execute, transform(make_run, {"sql": text}), canaries, staging, expected)
    assert message.startswith("config.sql: ")


EVIL = "COPY (SELECT 'import os') TO '{dags}/evil.py' (FORMAT csv)"

FRAGMENT_ESCAPES = [
    (
        "filter condition",
        {"op": "filter", "condition": "1); " + EVIL + " --"},
        "config.operations[0].condition: not an SQL expression",
    ),
    (
        "filter reading a file",
        {"op": "filter", "condition": "id IN (SELECT 1 FROM read_text('/proc/self/environ'))"},
        "table function 'read_text'",
    ),
    (
        "derive expression",
        {"op": "derive", "column": "x", "expression": "1) AS x FROM orders; " + EVIL + " --"},
        "config.operations[0].expression: not an SQL expression",
    ),
    (
        "derive reading settings",
        {"op": "derive", "column": "x", "expression": "current_setting('memory_limit')"},
        "function 'current_setting' is not allowed",
    ),
    (
        "aggregation",
        {"op": "aggregate", "aggregations": {"n": "count(*) FROM orders; " + EVIL + " --"}},
        "config.operations[0].aggregations.n: not an SQL expression",
    ),
    (
        "deduplicate order",
        {"op": "deduplicate", "columns": ["id"], "order_by": "id) = 1; " + EVIL + "; SELECT (1"},
        "config.operations[0] (deduplicate): must be one SELECT statement, found 3 statements",
    ),
    (
        "cast type",
        {"op": "cast", "columns": {"id": "INTEGER) AS id FROM orders; " + EVIL + " --"}},
        "config.operations[0].columns.id:",
    ),
    ("cast to no type", {"op": "cast", "columns": {"id": "evil_type"}}, "is not a DuckDB type"),
]


@pytest.mark.parametrize(
    ("name", "operation", "expected"), FRAGMENT_ESCAPES, ids=[e[0] for e in FRAGMENT_ESCAPES]
)
def test_transform_operation_escape_is_refused(
    name, operation, expected, orders, canaries, make_run, execute, staging
):
    text = json.loads(json.dumps(operation).replace("{dags}", str(canaries.dags)))
    refused(execute, transform(make_run, {"operations": [text]}), canaries, staging, expected)


def test_transform_cast_writes_the_parsed_type(orders, make_run, execute, staging):
    config = {"operations": [{"op": "cast", "columns": {"amount": "decimal(12, 2)", "id": "varchar"}}]}
    manifest = execute(transform(make_run, config))
    types = {f["name"]: f["type"] for f in manifest["outputs"][0]["schema"]}
    assert types == {"id": "string", "status": "string", "amount": "decimal128(12, 2)"}


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT * FROM data; " + EVIL, "found 2 statements"),
        ("SELECT * FROM read_text('/proc/self/environ')", "table function 'read_text'"),
        ("SELECT * FROM data WHERE id IN (SELECT 1 FROM orders_of_someone_else)", "is not an input"),
        ("DELETE FROM data", "not DELETE"),
    ],
    ids=["second statement", "environment", "unknown table", "delete"],
)
def test_validate_custom_sql_escape_is_refused(sql, expected, orders, canaries, make_run, execute, staging):
    step_run = make_run(
        "validate",
        {"checks": [{"check": "custom_sql", "sql": sql.format(dags=canaries.dags)}]},
        inputs=["orders"],
        task_id="check",
    )
    message = refused(execute, step_run, canaries, staging, expected)
    assert message.startswith("config.checks[0].sql: ")


def test_validate_custom_sql_within_the_box_still_works(orders, make_run, execute, staging):
    step_run = make_run(
        "validate",
        {
            "checks": [
                {
                    "check": "custom_sql",
                    "sql": "WITH paid AS (SELECT * FROM data WHERE status = 'paid') "
                    "SELECT * FROM paid WHERE amount > 6;",
                    "severity": "warning",
                    "name": "big",
                }
            ]
        },
        inputs=["orders"],
        task_id="check",
    )
    manifest = execute(step_run)
    assert [(c["name"], c["failing_count"]) for c in manifest["checks"]] == [("big", 1)]


def test_transform_runaway_query_is_interrupted_at_the_limit(orders, make_run, execute, staging, settings):
    settings.ETL_DUCKDB_TIMEOUT = 0.5
    sql = "SELECT sum(hash(range)) AS h FROM range(1000000000000000)"
    with pytest.raises(StepFailure) as caught:
        execute(transform(make_run, {"sql": sql}))
    assert str(caught.value) == (
        "the SQL of step 'shape' ran past its time limit of 0.5 s (ETL_DUCKDB_TIMEOUT) and was interrupted"
    )
    assert caught.value.retryable is False


def test_validate_runaway_check_is_interrupted_at_the_limit(orders, make_run, execute, settings):
    settings.ETL_DUCKDB_TIMEOUT = 0.5
    check = {
        "check": "custom_sql",
        "sql": "SELECT * FROM data, range(1000000000000000) r WHERE hash(r.range) = 7",
    }
    with pytest.raises(StepFailure, match=r"step 'check' ran past its time limit of 0.5 s"):
        execute(make_run("validate", {"checks": [check]}, inputs=["orders"], task_id="check"))
