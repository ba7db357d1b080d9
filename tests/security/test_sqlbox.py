"""The locked DuckDB connection on its own: the lock holds even for SQL that skipped the parser checks."""

from __future__ import annotations

import os

import pyarrow as pa
import pytest


@pytest.fixture
def box(settings):
    from airflow_plugin.steps.sqlbox import SqlBox

    settings.ETL_DUCKDB_MEMORY_LIMIT = "300MB"
    settings.ETL_DUCKDB_THREADS = 1
    with SqlBox("probe", timeout=0) as opened:
        opened.register("orders", pa.table({"id": [1, 2]}))
        yield opened


def test_sqlbox_settings_come_from_the_etl_settings(box):
    rows = dict(
        box.con.execute(
            "SELECT name, value FROM duckdb_settings() WHERE name IN "
            "('enable_external_access', 'lock_configuration', 'autoinstall_known_extensions', "
            "'autoload_known_extensions', 'python_enable_replacements', 'threads', 'memory_limit')"
        ).fetchall()
    )
    assert rows == {
        "enable_external_access": "false",
        "lock_configuration": "true",
        "autoinstall_known_extensions": "false",
        "autoload_known_extensions": "false",
        "python_enable_replacements": "false",
        "threads": "1",
        "memory_limit": "286.1 MiB",  # 300 MB as DuckDB prints it
    }


@pytest.mark.parametrize(
    ("statement", "error"),
    [
        ("SELECT * FROM read_text('/proc/self/environ')", "file system operations are disabled"),
        ("COPY (SELECT 1) TO '{tmp}/evil.py' (FORMAT csv)", "file system operations are disabled"),
        ("ATTACH '{tmp}/x.duckdb' AS x", "file system operations are disabled"),
        ("INSTALL httpfs", "file system operations are disabled"),
        ("LOAD httpfs", "Loading external extensions is disabled"),
        ("SET enable_external_access = true", "the configuration has been locked"),
        ("SET memory_limit = '64GB'", "the configuration has been locked"),
        ("PRAGMA threads = 64", "the configuration has been locked"),
        ("RESET lock_configuration", "the configuration has been locked"),
    ],
    ids=["read", "copy", "attach", "install", "load", "set access", "set memory", "pragma", "reset"],
)
def test_sqlbox_connection_itself_refuses(box, tmp_path, statement, error):
    import duckdb

    with pytest.raises(duckdb.Error, match=error):
        box.con.execute(statement.format(tmp=tmp_path)).fetchall()
    assert list(tmp_path.iterdir()) == []


def test_sqlbox_python_variables_are_not_tables(box):
    import duckdb

    secret_rows = pa.table({"secret": ["canary"]})  # a DuckDB replacement scan would find this local by name
    with pytest.raises(duckdb.CatalogException, match="secret_rows does not exist"):
        box.con.execute("SELECT * FROM secret_rows").fetchall()
    assert secret_rows.num_rows == 1


def test_sqlbox_close_removes_its_spill_folder(settings):
    from airflow_plugin.steps.sqlbox import SqlBox

    box = SqlBox("probe", timeout=0)
    spill = box._temp
    assert os.path.isdir(spill)
    box.close()
    assert not os.path.exists(spill)


def test_sqlbox_check_select_accepts_ordinary_queries(box):
    for sql in [
        "SELECT * FROM orders",
        "select id from ORDERS where id > 1;",
        "WITH o AS (SELECT * FROM orders) SELECT count(*) FROM o",
        "SELECT * FROM orders, range(3) r, unnest([1, 2]) u",
        "SELECT id FROM orders -- trailing comment",
    ]:
        assert box.check_select(sql, "config.sql")


def test_sqlbox_cte_names_hold_only_inside_their_query(box):
    from django_etl.errors import StepFailure

    with pytest.raises(StepFailure, match="table 'x' is not an input of this step"):
        box.check_select("SELECT * FROM (WITH x AS (SELECT 1) SELECT * FROM x), x", "config.sql")
