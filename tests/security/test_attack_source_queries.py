"""A hostile tenant's second round against source queries: timeouts that switch themselves off, runaway SQLite."""

from __future__ import annotations

import time

import pytest

from django_etl.dataplane import ConnectorError
from tests.security.test_source_queries import _read, pg_source, sqlite_source  # noqa: F401

pytestmark = pytest.mark.integration


def test_postgres_statement_timeout_cannot_be_switched_off_by_the_query(pg_source, settings):  # noqa: F811
    adapter, conn = pg_source
    # set_config is refused in the query's text; a function of the source database can still call it. The
    # first FETCH turns the session's timeout off; every later FETCH of the cursor would run unbounded.
    conn.execute(
        "CREATE FUNCTION timeout_off() RETURNS text LANGUAGE sql AS "
        "$$ SELECT set_config('statement_timeout', '0', false) $$"
    )
    settings.ETL_SOURCE_STATEMENT_TIMEOUT = 1
    query = "SELECT timeout_off() AS off, pg_sleep(CASE WHEN g > 1 THEN 3 ELSE 0 END) FROM generate_series(1, 3) AS g"
    started = time.monotonic()
    with pytest.raises(ConnectorError, match="timed out"):
        # One row per batch: each FETCH is a statement of its own.
        [row for batch in adapter.read({"query": query}, 1) for row in batch.to_pylist()]
    assert time.monotonic() - started < 4.5


def test_postgres_read_only_session_cannot_be_switched_off_by_the_query(pg_source):  # noqa: F811
    adapter, conn = pg_source
    with pytest.raises(ConnectorError):
        _read(
            adapter,
            "SELECT set_config('default_transaction_read_only', 'off', false), "
            "set_config('transaction_read_only', 'off', false)",
        )
    assert conn.execute("SELECT count(*) FROM orders").fetchone() == (2,)


def test_sqlite_runaway_query_is_bounded_by_the_statement_timeout(sqlite_source, settings):  # noqa: F811
    adapter, _, _ = sqlite_source
    settings.ETL_SOURCE_STATEMENT_TIMEOUT = 0.5
    started = time.monotonic()
    with pytest.raises(ConnectorError, match="timed out") as caught:
        _read(
            adapter,
            "WITH RECURSIVE forever(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM forever) "
            "SELECT count(*) FROM forever",
        )
    assert time.monotonic() - started < 5
    assert caught.value.retryable is True


@pytest.mark.parametrize(
    "query", ["SELECT length(zeroblob(900000000))", "SELECT length(randomblob(900000000))"]
)
def test_sqlite_huge_value_is_refused(sqlite_source, query):  # noqa: F811
    adapter, _, _ = sqlite_source
    with pytest.raises(ConnectorError, match="too big"):
        _read(adapter, query)


@pytest.mark.parametrize(
    "query",
    [
        "SELECT 1; COMMIT; DROP TABLE orders",
        "COMMIT; DROP TABLE orders",
        "SELECT 1 FROM orders; SET TRANSACTION READ WRITE; DELETE FROM orders",
        "SELECT * FROM orders FOR UPDATE",
        "COPY orders TO PROGRAM 'id'",
        "SET LOCAL statement_timeout = 0",
        # PostgreSQL 15 writes large objects inside a READ ONLY transaction: refused before the query is sent.
        "SELECT lo_import('/etc/hostname')",  # the test login is a superuser
        "SELECT lo_create(0)",
        "SELECT lo_from_bytea(0, 'planted')",
        "SELECT pg_catalog.lo_create(0)",
        'SELECT "lo_create"(0)',
        'SELECT U&"lo\\005fcreate"(0)',
        "SELECT query_to_xml('SELECT lo_create(0)', true, true, '')",
        "SELECT * FROM orders, LATERAL (SELECT lo_from_bytea(0, note::bytea)) AS planted",
        "SELECT pg_notify('channel', 'x')",
        "SELECT pg_logical_emit_message(true, 'x', 'y')",
        "SELECT set_config('statement_timeout', '0', false)",
        "SELECT pg_read_file('/etc/hostname')",
        "SELECT * FROM pg_ls_dir('.')",
        "SELECT pg_create_logical_replication_slot('etl_probe', 'test_decoding')",
    ],
)
def test_postgres_extract_query_cannot_leave_the_read_only_transaction(pg_source, query):  # noqa: F811
    adapter, conn = pg_source
    with pytest.raises(ConnectorError) as caught:
        _read(adapter, query)
    assert caught.value.retryable is False
    assert conn.execute("SELECT count(*), min(note) FROM orders").fetchone() == (2, "kept")
    assert conn.execute("SELECT count(*) FROM pg_largeobject_metadata").fetchone() == (0,)
    assert conn.execute("SELECT count(*) FROM pg_replication_slots").fetchone() == (0,)


def test_postgres_refused_function_names_in_strings_and_comments_are_only_text(pg_source):  # noqa: F811
    adapter, _ = pg_source
    rows = _read(
        adapter,
        "SELECT 'lo_import' AS word, $$query_to_xml$$ AS other, \"id\" -- lo_create(0)\n"
        "/* pg_notify /* nested */ set_config */ FROM orders WHERE note <> E'lo_put\\'' ORDER BY id",
    )
    assert rows == [
        {"word": "lo_import", "other": "query_to_xml", "id": 1},
        {"word": "lo_import", "other": "query_to_xml", "id": 2},
    ]


def test_side_effect_refusal_names_the_function():
    from django_etl.dataplane.pgread import side_effect_refusal

    assert side_effect_refusal("SELECT lo_from_bytea(0, 'x')") == (
        "lo_from_bytea() writes even in a read-only transaction"
    )
    assert "runs SQL given as a string" in side_effect_refusal("select QUERY_TO_XML('x', true, true, '')")
    assert "runs SQL given as a string" in side_effect_refusal("SELECT * FROM dblink('h', 'q') AS t(x int)")
    assert side_effect_refusal("SELECT lo_get(42), loread(0, 1), md5('lo_create')") is None


@pytest.mark.django_db
def test_validate_step_refuses_a_source_query_with_a_side_effect_at_save(pipeline, make_step, db_connector):
    from django_etl.pipelines.validation import validate_step

    step = make_step(
        "plant", "extract", {"connector": "warehouse", "query": "SELECT lo_from_bytea(0, 'x')"}, 1
    )
    problems = [(p.key, p.message) for p in validate_step(step)]
    assert (
        "config.query",
        "query refused: lo_from_bytea() writes even in a read-only transaction",
    ) in problems
    fine = make_step("read", "extract", {"connector": "warehouse", "query": "SELECT 'lo_create' AS x"}, 2)
    assert [p for p in validate_step(fine) if p.key == "config.query"] == []


def test_sqlite_tenant_files_open_defensive_with_an_untrusted_schema(sqlite_source):  # noqa: F811
    import sqlite3

    adapter, _, _ = sqlite_source
    for conn in (adapter.connect_read_only(), adapter.connect()):
        try:
            assert conn.getconfig(sqlite3.SQLITE_DBCONFIG_DEFENSIVE) is True
            assert conn.getconfig(sqlite3.SQLITE_DBCONFIG_TRUSTED_SCHEMA) is False
        finally:
            conn.close()
