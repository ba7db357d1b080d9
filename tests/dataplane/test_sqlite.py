"""The SQLite adapter on real files: reads with watermarks, preview, and loads in the four modes with the ledger."""

from __future__ import annotations

import sqlite3

import pyarrow as pa
import pytest

from django_etl.dataplane import adapter_for
from django_etl.errors import StepFailure
from tests.dataplane.conftest import crash_at, load_request, no_crash


def sqlite_adapter(path):
    return adapter_for(
        {
            "type": "database",
            "name": "warehouse",
            "config": {"engine": "sqlite", "path": str(path)},
            "secret": {},
        }
    )


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


def test_sqlite_load_modes_are_idempotent(staged, tmp_path, monkeypatch):
    adapter = sqlite_adapter(tmp_path / "w.db")
    dataset = staged()
    crash_at(monkeypatch, "before_commit")
    with pytest.raises(RuntimeError):
        adapter.load(load_request(mode="upsert", key=["id"]), dataset)
    no_crash(monkeypatch)
    adapter.load(load_request(mode="upsert", key=["id"]), dataset)
    adapter.load(load_request(mode="upsert", key=["id"]), dataset)
    appended = staged(run_id="r-append")
    first = adapter.load(load_request(run_id="r-append", mode="append", table="events"), appended)
    again = adapter.load(load_request(run_id="r-append", mode="append", table="events"), appended)
    assert first.rows == 3 and again.skipped == "already loaded by an earlier try"
    with sqlite3.connect(tmp_path / "w.db") as conn:
        assert conn.execute("SELECT count(*) FROM orders").fetchone()[0] == 3
        assert conn.execute("SELECT count(*) FROM events").fetchone()[0] == 3
        ledger = conn.execute("SELECT task_id, target, rows FROM etl_load_ledger ORDER BY target").fetchall()
    assert ledger == [("load_orders", "events", 3), ("load_orders", "orders", 3)]


def test_sqlite_load_crash_after_commit_then_retry_keeps_rows_once(staged, tmp_path, monkeypatch):
    adapter = sqlite_adapter(tmp_path / "w.db")
    dataset = staged()
    crash_at(monkeypatch, "after_commit")
    with pytest.raises(RuntimeError):
        adapter.load(load_request(), dataset)
    no_crash(monkeypatch)
    assert adapter.load(load_request(), dataset).skipped
    with sqlite3.connect(tmp_path / "w.db") as conn:
        assert conn.execute("SELECT count(*) FROM orders").fetchone()[0] == 3


def test_sqlite_load_replace_interval_keeps_other_days(staged, tmp_path):
    path = tmp_path / "w.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE orders (id INTEGER, name TEXT, amount REAL, created_at TEXT)")
        conn.execute("INSERT INTO orders VALUES (99, 'old day', 1, '2025-01-01 12:00:00+00:00')")
        conn.execute("INSERT INTO orders VALUES (2, 'stale', 0, '2025-01-02 03:00:00+00:00')")
    written = sqlite_adapter(path).load(
        load_request(mode="replace_interval", interval_column="created_at"), staged()
    )
    assert written.rows == 3 and written.uri == f"sqlite:///{path}#orders"
    with sqlite3.connect(path) as conn:
        assert [r[0] for r in conn.execute("SELECT id FROM orders ORDER BY id")] == [1, 2, 3, 99]


def test_sqlite_load_schema_drift_and_missing_table_are_named(staged, tmp_path):
    path = tmp_path / "w.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE orders (id INTEGER, name TEXT)")
    adapter = sqlite_adapter(path)
    with pytest.raises(StepFailure, match=r"schema drift: staged column\(s\) \['amount', 'created_at'\]"):
        adapter.load(load_request(), staged())
    with pytest.raises(StepFailure, match="missing table: 'other' does not exist and create_table is off"):
        adapter.load(load_request(table="other", create_table=False), staged())
