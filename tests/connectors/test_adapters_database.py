"""The database adapters on real PostgreSQL (server-side cursor) and SQLite: reads, watermarks, failures."""

from __future__ import annotations

import sqlite3
from decimal import Decimal

import pyarrow as pa
import pytest

from django_etl.connectors.adapters import ConnectorError, adapter_for

pytestmark = pytest.mark.integration


@pytest.fixture
def source(pg_target):
    runtime, conn = pg_target
    conn.execute(
        "CREATE TABLE orders (id int PRIMARY KEY, name text, price numeric(10, 2), "
        "created timestamptz, ok boolean, doc jsonb)"
    )
    conn.execute(
        "INSERT INTO orders SELECT i, 'n' || i, i * 1.25, '2025-01-01'::timestamptz + i * interval '1 hour', "
        "i % 2 = 0, jsonb_build_object('i', i) FROM generate_series(1, 25) AS i"
    )
    return adapter_for(runtime)


def test_postgres_read_table_streams_typed_batches(source):
    batches = list(source.read({"table": "orders"}, batch_size=10))
    assert [b.num_rows for b in batches] == [10, 10, 5]
    schema = batches[0].schema
    assert schema.field("id").type == pa.int64()
    assert schema.field("price").type == pa.decimal128(10, 2)
    assert str(schema.field("created").type) == "timestamp[us, tz=UTC]"
    assert batches[0].column("price")[1].as_py() == Decimal("2.50")
    assert batches[0].column("doc")[0].as_py() == '{"i": 1}'


def test_postgres_read_query_with_watermark_only_newer_rows(source):
    rows = list(
        source.read(
            {
                "query": "SELECT id, created FROM orders WHERE name LIKE 'n%';",
                "watermark": {"column": "created", "value": "2025-01-01T20:00:00+00:00"},
            },
            100,
        )
    )
    assert pa.Table.from_batches(rows).column("id").to_pylist() == [21, 22, 23, 24, 25]


def test_postgres_missing_table_is_permanent(source):
    with pytest.raises(ConnectorError, match='missing table: relation "nope" does not exist') as caught:
        list(source.read({"table": "nope"}, 10))
    assert caught.value.retryable is False


def test_postgres_unknown_role_is_permanent_and_hides_password(pg_target):
    runtime, _ = pg_target
    adapter = adapter_for({**runtime, "secret": {"user": "ghost", "password": "pw-canary-x"}})
    with pytest.raises(ConnectorError, match="cannot connect") as caught:
        adapter.check()
    assert caught.value.retryable is False and "pw-canary-x" not in str(caught.value)


def test_postgres_refused_connection_is_retryable(pg_target):
    from tests.connectors.servers import free_port

    runtime, _ = pg_target
    adapter = adapter_for({**runtime, "config": {**runtime["config"], "port": free_port()}})
    with pytest.raises(ConnectorError, match="cannot connect") as caught:
        adapter.check()
    assert caught.value.retryable is True


def test_sqlite_read_with_watermark_and_sample(tmp_path):
    path = tmp_path / "src.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE events (id INTEGER, kind TEXT, at TEXT)")
        conn.executemany(
            "INSERT INTO events VALUES (?, ?, ?)", [(i, "k", f"2025-01-{i:02d}") for i in range(1, 8)]
        )
    adapter = adapter_for(
        {"type": "database", "name": "s", "config": {"engine": "sqlite", "path": str(path)}, "secret": {}}
    )
    batches = list(
        adapter.read({"table": "events", "watermark": {"column": "at", "value": "2025-01-05"}}, 10)
    )
    assert pa.Table.from_batches(batches).column("id").to_pylist() == [6, 7]
    assert adapter.sample(3).num_rows == 3
    assert "1 table(s)" in adapter.check()
