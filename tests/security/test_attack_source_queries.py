"""A hostile tenant's second round against source queries: timeouts that switch themselves off, runaway SQLite."""

from __future__ import annotations

import time

import pytest

from django_etl.dataplane import ConnectorError
from tests.security.test_source_queries import _read, pg_source, sqlite_source  # noqa: F401

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    "query",
    [
        # The first FETCH turns the session's timeout off; every later FETCH of the cursor would run unbounded.
        "SELECT set_config('statement_timeout', '0', false) AS off, pg_sleep(CASE WHEN g > 1 THEN 3 ELSE 0 END)"
        " FROM generate_series(1, 3) AS g",
        "SELECT set_config('statement_timeout', '0', true) AS off, pg_sleep(CASE WHEN g > 1 THEN 3 ELSE 0 END)"
        " FROM generate_series(1, 3) AS g",
    ],
)
def test_postgres_statement_timeout_cannot_be_switched_off_by_the_query(pg_source, settings, query):  # noqa: F811
    adapter, _ = pg_source
    settings.ETL_SOURCE_STATEMENT_TIMEOUT = 1
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
