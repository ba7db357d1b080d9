"""Source queries read only: a tenant's extract query or preview can read its source and change nothing."""

from __future__ import annotations

import sqlite3

import pytest

from django_etl.dataplane import ConnectorError, adapter_for

pytestmark = pytest.mark.integration


@pytest.fixture
def pg_source(pg_target):
    runtime, conn = pg_target
    conn.execute("CREATE TABLE orders (id int PRIMARY KEY, note text)")
    conn.execute("INSERT INTO orders VALUES (1, 'kept'), (2, 'kept')")
    return adapter_for(runtime), conn


def _read(adapter, query: str) -> list:
    return [row for batch in adapter.read({"query": query}, 100) for row in batch.to_pylist()]


@pytest.mark.parametrize(
    "query",
    [
        "WITH gone AS (DELETE FROM orders RETURNING *) SELECT * FROM gone",
        "WITH changed AS (UPDATE orders SET note = 'pwned' RETURNING *) SELECT * FROM changed",
        "SELECT set_config('transaction_read_only', 'off', false), * FROM orders",
        "SELECT nextval('no_such_seq')",
    ],
)
def test_postgres_extract_query_cannot_write(pg_source, query):
    adapter, conn = pg_source
    with pytest.raises(ConnectorError):
        _read(adapter, query)
    assert conn.execute("SELECT count(*), min(note), max(note) FROM orders").fetchone() == (2, "kept", "kept")


def test_postgres_extract_query_cannot_create_a_table_through_a_function(pg_source):
    adapter, conn = pg_source
    conn.execute(
        "CREATE FUNCTION sneaky() RETURNS int LANGUAGE plpgsql AS "
        "$$ BEGIN CREATE TABLE planted (x int); RETURN 1; END $$"
    )
    with pytest.raises(ConnectorError, match="source queries are read-only") as caught:
        _read(adapter, "SELECT sneaky()")
    assert caught.value.retryable is False
    assert conn.execute("SELECT to_regclass('planted')").fetchone() == (None,)


def test_postgres_extract_query_is_bounded_by_the_statement_timeout(pg_source, settings):
    adapter, _ = pg_source
    settings.ETL_SOURCE_STATEMENT_TIMEOUT = 0.5
    with pytest.raises(ConnectorError, match="timed out") as caught:
        _read(adapter, "SELECT pg_sleep(5)")
    assert caught.value.retryable is True


@pytest.mark.parametrize(
    "query",
    [
        "SELECT 1) TO STDOUT; COMMIT; CREATE TABLE planted (x int); COPY (SELECT 1",
        "SELECT * FROM orders\n) TO STDOUT (FORMAT csv); COMMIT; BEGIN READ WRITE; DELETE FROM orders; --",
        "SELECT 1; COMMIT; CREATE TABLE planted (x int)",
    ],
)
def test_postgres_extract_query_cannot_break_out_of_the_copy(pg_source, query):
    """Reads run the query inside COPY (…) TO STDOUT: it is declared alone first, so it cannot close the COPY."""
    adapter, conn = pg_source
    with pytest.raises(ConnectorError):
        _read(adapter, query)
    assert conn.execute("SELECT to_regclass('planted')").fetchone() == (None,)
    assert conn.execute("SELECT count(*), min(note), max(note) FROM orders").fetchone() == (2, "kept", "kept")


def test_postgres_extract_query_ending_in_a_comment_still_reads(pg_source):
    adapter, _ = pg_source
    assert _read(adapter, "SELECT count(*) AS n FROM orders -- a comment ends the query") == [{"n": 2}]


def test_postgres_read_only_still_reads(pg_source):
    adapter, _ = pg_source
    assert _read(adapter, "SELECT id, note FROM orders ORDER BY id") == [
        {"id": 1, "note": "kept"},
        {"id": 2, "note": "kept"},
    ]
    assert adapter.sample(5).num_rows == 2


@pytest.fixture
def sqlite_source(tmp_path, settings):
    path = tmp_path / "crm.db"
    other = tmp_path / "other.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
        conn.execute("INSERT INTO customers VALUES (1, 'Ada')")
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE secrets (value TEXT)")
        conn.execute("INSERT INTO secrets VALUES ('other-organization-canary')")
    settings.ETL_FILE_ROOTS = [str(tmp_path)]
    runtime = {
        "type": "database",
        "name": "crm",
        "config": {"engine": "sqlite", "path": str(path)},
        "secret": {},
    }
    return adapter_for(runtime), path, other


@pytest.mark.parametrize(
    "query",
    [
        "DELETE FROM customers",
        "SELECT 1; DELETE FROM customers",
        "VACUUM INTO '{copy}'",
        "ATTACH DATABASE '{other}' AS o",
        "SELECT * FROM customers) AS a; ATTACH DATABASE '{other}' AS o; SELECT * FROM (SELECT 1",
        "WITH x AS (SELECT 1) INSERT INTO customers VALUES (2, 'x')",
        "SELECT load_extension('/tmp/evil')",
        "PRAGMA writable_schema = 1",
    ],
)
def test_sqlite_extract_query_cannot_write_or_reach_another_file(sqlite_source, tmp_path, query):
    adapter, path, other = sqlite_source
    copy = tmp_path / "copy.db"
    with pytest.raises(ConnectorError):
        _read(adapter, query.format(other=other, copy=copy))
    assert not copy.exists()
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT count(*) FROM customers").fetchone() == (1,)


def test_sqlite_authorizer_refusal_names_the_rule(sqlite_source):
    adapter, _, other = sqlite_source
    with pytest.raises(ConnectorError, match=r"may only read this file|syntax error"):
        _read(adapter, f"SELECT * FROM customers) AS a, (SELECT 1 FROM pragma_table_info('{other}')")


def test_sqlite_read_only_still_reads_with_a_cte_and_functions(sqlite_source):
    adapter, _, _ = sqlite_source
    rows = _read(adapter, "WITH c AS (SELECT id, upper(name) AS name FROM customers) SELECT * FROM c")
    assert rows == [{"id": 1, "name": "ADA"}]
    assert adapter.sample(5).num_rows == 1
