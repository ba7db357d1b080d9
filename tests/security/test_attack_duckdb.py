"""A hostile tenant's second round against the DuckDB box: settings read through SHOW, memory outside its limit."""

from __future__ import annotations

import pyarrow as pa
import pytest

from airflow_plugin.steps.context import StepFailure
from tests.security.test_duckdb_sandbox import refused, transform


@pytest.fixture
def box(settings):
    from airflow_plugin.steps.sqlbox import SqlBox

    with SqlBox("probe", timeout=30) as opened:
        opened.register("orders", pa.table({"id": [1, 2], "status": ["paid", "void"]}))
        yield opened


# SHOW <setting> is current_setting() by another name: the worker's temporary folder, home, secrets folder.
SHOWS = [
    "SHOW temp_directory",
    "SHOW secret_directory",
    "SHOW memory_limit",
    "SELECT * FROM (SHOW temp_directory)",
    "SELECT id FROM orders WHERE id IN (SELECT 1 FROM (SHOW home_directory))",
    "SHOW ALL TABLES",
    "SHOW TABLES",
    "SHOW databases",
    "SHOW TABLES FROM system",
    "WITH s AS (SHOW extension_directory) SELECT * FROM s",
]


@pytest.mark.parametrize("sql", SHOWS)
def test_sqlbox_show_of_a_setting_or_the_catalog_is_refused(box, sql):
    with pytest.raises(StepFailure, match="reads a setting or the catalog, not data"):
        box.check_select(sql, "config.sql")


@pytest.mark.parametrize("sql", ["DESCRIBE orders", "SUMMARIZE orders", "DESCRIBE SELECT id FROM orders"])
def test_sqlbox_describe_of_an_input_still_runs(box, sql):
    assert box.fetch(box.check_select(sql, "config.sql"))


def test_sqlbox_describe_of_something_else_is_refused(box):
    with pytest.raises(StepFailure, match="table 'pg_settings' is not an input"):
        box.check_select("DESCRIBE pg_settings", "config.sql")


def test_transform_show_setting_is_refused(orders, canaries, make_run, execute, staging):
    message = refused(
        execute,
        transform(make_run, {"sql": "SELECT * FROM (SHOW temp_directory)"}),
        canaries,
        staging,
        "reads a setting or the catalog",
    )
    assert message.startswith("config.sql: ")


# One value past memory_limit (512MB): DuckDB allocates it outside its buffer manager, so only the heap cap
# holds it. Without the cap this query takes about 5 GB of the machine; with it, nothing is allocated.
HUGE_VALUES = [
    "SELECT length(repeat('a', 3000000000))",
    "SELECT len(range(400000000))",
    "SELECT octet_length(repeat('a'::BLOB, 3000000000))",
]


@pytest.mark.parametrize("sql", HUGE_VALUES)
def test_sqlbox_value_past_the_heap_cap_fails_and_the_box_survives(box, sql):
    import duckdb

    with pytest.raises(duckdb.OutOfMemoryException):
        box.fetch(box.check_select(sql, "config.sql"))
    assert box.fetch("SELECT count(*) FROM orders") == [(2,)]


def test_sqlbox_heap_cap_is_lifted_when_the_box_closes(settings):
    import resource

    from airflow_plugin.steps.sqlbox import SqlBox

    before = resource.getrlimit(resource.RLIMIT_DATA)
    with SqlBox("outer", timeout=0):
        capped = resource.getrlimit(resource.RLIMIT_DATA)[0]
        assert capped != resource.RLIM_INFINITY
        with SqlBox("inner", timeout=0):
            assert resource.getrlimit(resource.RLIMIT_DATA)[0] > capped  # a second box widens it
        assert resource.getrlimit(resource.RLIMIT_DATA)[0] == capped
    assert resource.getrlimit(resource.RLIMIT_DATA) == before


def test_transform_value_past_the_heap_cap_fails_naming_the_setting(
    orders, canaries, make_run, execute, staging
):
    message = refused(
        execute,
        transform(make_run, {"sql": "SELECT id, repeat(status, 1000000000) AS big FROM orders"}),
        canaries,
        staging,
        "ETL_DUCKDB_MEMORY_LIMIT",
    )
    assert message.startswith("config.sql: DuckDB ran out of memory")


STATEMENTS = [
    "CREATE SECRET leak (TYPE s3, KEY_ID 'x', SECRET 'y')",
    "CREATE PERSISTENT SECRET leak (TYPE s3, KEY_ID 'x', SECRET 'y')",
    "SET GLOBAL enable_external_access = true",
    "RESET ALL",
    "RESET lock_configuration",
    "SELECT 1 /* ; */; SET threads = 64",
    "SELECT ';'; INSTALL httpfs",
    "SELECT 1 -- \n; LOAD httpfs",
    "SELECT $$;$$; ATTACH ':memory:' AS m",
    "SELECT E'\\'' ; ATTACH ':memory:' AS m",
    "ATTACH ':memory:' AS m",
    "DETACH memory",
    "USE system",
    "CHECKPOINT",
    "EXPORT DATABASE 'x'",
    "IMPORT DATABASE 'x'",
    "CALL pragma_version()",
    "PREPARE p AS SELECT 1",
    "EXECUTE p",
    "SET VARIABLE leak = current_setting('temp_directory')",
    "CREATE MACRO repeat(s, n) AS s",
    "UPDATE orders SET status = 'x'",
    "COPY orders TO 'x.csv'",
    "EXPLAIN ANALYZE SELECT 1",
    "SUMMARIZE SELECT * FROM read_text('/proc/self/environ')",
    "DESCRIBE SELECT * FROM glob('/etc/*')",
]


@pytest.mark.parametrize("sql", STATEMENTS)
def test_sqlbox_statement_other_than_one_select_is_refused(box, sql):
    with pytest.raises(StepFailure, match=r"^config\.sql: "):
        box.check_select(sql, "config.sql")
    # And the lock holds without the check: the same text run raw changes nothing it guards.
    import contextlib

    import duckdb

    from django_etl import conf

    with contextlib.suppress(duckdb.Error):
        box.con.execute(sql)
    settings = dict(
        box.con.execute(
            "SELECT name, value FROM duckdb_settings() WHERE name IN "
            "('enable_external_access', 'lock_configuration', 'threads')"
        ).fetchall()
    )
    threads = str(conf.value("ETL_DUCKDB_THREADS"))
    assert settings == {"enable_external_access": "false", "lock_configuration": "true", "threads": threads}


def test_validate_value_past_the_heap_cap_fails_naming_the_setting(
    orders, canaries, make_run, execute, staging
):
    step_run = make_run(
        "validate",
        {
            "checks": [
                {
                    "check": "custom_sql",
                    "sql": "SELECT id FROM data WHERE length(repeat(status, 1000000000)) > 0",
                }
            ]
        },
        inputs=["orders"],
        task_id="check",
    )
    message = refused(execute, step_run, canaries, staging, "ETL_DUCKDB_MEMORY_LIMIT")
    assert message.startswith("config.checks[0]: DuckDB ran out of memory")
