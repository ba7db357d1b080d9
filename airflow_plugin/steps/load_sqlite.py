"""Load a staged dataset into SQLite: the same four modes and ledger as PostgreSQL, in one transaction."""

from __future__ import annotations

import sqlite3
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pyarrow as pa

from airflow_plugin.steps.context import StepFailure, StepRun
from airflow_plugin.steps.load_postgres import LEDGER, fault
from django_etl.connectors.adapters.database import quote_sqlite, split_table_name


def sqlite_type(kind: pa.DataType) -> str:
    if pa.types.is_integer(kind) or pa.types.is_boolean(kind):
        return "INTEGER"
    if pa.types.is_floating(kind) or pa.types.is_decimal(kind):
        return "REAL"
    return "TEXT"


def to_sqlite(value: Any) -> Any:
    # Timestamps as ISO text with a space, the form SQLite's date functions compare correctly.
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return value


def load(step: StepRun, adapter, ref: dict[str, Any]) -> None:
    config = step.config
    if not config.table:
        raise StepFailure("a database load needs 'table'")
    table = ".".join(quote_sqlite(p) for p in split_table_name(config.table))
    dataset = step.staging.reader(ref["uri"])
    columns = dataset.schema.names
    conn = adapter.connect()
    conn.isolation_level = None  # explicit BEGIN/COMMIT below
    try:
        conn.execute(
            f"CREATE TABLE IF NOT EXISTS {LEDGER} (dag_id TEXT, run_id TEXT, task_id TEXT, target TEXT, "
            "rows INTEGER, loaded_at TEXT DEFAULT CURRENT_TIMESTAMP, PRIMARY KEY (dag_id, run_id, task_id))"
        )
        identity = [step.dag_id, step.run_id, step.task_id]
        conn.execute("BEGIN IMMEDIATE")
        try:
            done = conn.execute(
                f"SELECT rows FROM {LEDGER} WHERE dag_id = ? AND run_id = ? AND task_id = ?", identity
            ).fetchone()
            if config.mode == "append" and done is not None:
                conn.execute("ROLLBACK")
                step.result.details["skipped"] = "already loaded by an earlier try"
                return
            prepare(conn, step, table, dataset.schema)
            if config.mode == "replace":
                conn.execute(f"DELETE FROM {table}")
            elif config.mode == "replace_interval":
                start, end = step.data_interval_start, step.data_interval_end
                if start is None or end is None:
                    raise StepFailure("mode 'replace_interval' needs a run with a data interval")
                column = quote_sqlite(config.interval_column)
                conn.execute(
                    f"DELETE FROM {table} WHERE {column} >= ? AND {column} < ?",
                    [to_sqlite(start), to_sqlite(end)],
                )
            names = ", ".join(quote_sqlite(c) for c in columns)
            marks = ", ".join("?" for _ in columns)
            statement = f"INSERT INTO {table} ({names}) VALUES ({marks})"
            if config.mode == "upsert":
                keys = ", ".join(quote_sqlite(k) for k in config.key)
                others = [c for c in columns if c not in config.key]
                action = (
                    "DO UPDATE SET "
                    + ", ".join(f"{quote_sqlite(c)} = excluded.{quote_sqlite(c)}" for c in others)
                    if others
                    else "DO NOTHING"
                )
                statement += f" ON CONFLICT ({keys}) {action}"
            rows = 0
            for batch in dataset.to_batches(batch_size=20_000):
                values = [[to_sqlite(v) for v in row.values()] for row in batch.to_pylist()]
                conn.executemany(statement, values)
                rows += batch.num_rows
            fault("before_commit")
            conn.execute(
                f"INSERT INTO {LEDGER} (dag_id, run_id, task_id, target, rows) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (dag_id, run_id, task_id) DO UPDATE SET rows = excluded.rows",
                [*identity, config.table, rows],
            )
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        fault("after_commit")
    except sqlite3.OperationalError as exc:
        text = str(exc)
        if "no such table" in text:
            raise StepFailure(f"missing table: {text}") from None
        raise StepFailure(f"SQLite load failed: {text}", retryable="locked" in text) from None
    except sqlite3.DatabaseError as exc:
        raise StepFailure(f"SQLite load into {config.table!r} refused: {exc}") from None
    finally:
        conn.close()
    step.result.add_target(
        config.table, f"sqlite:///{adapter.config['path']}#{config.table}", rows, ref.get("schema", [])
    )


def prepare(conn: sqlite3.Connection, step: StepRun, table: str, schema: pa.Schema) -> None:
    config = step.config
    existing = [r[1] for r in conn.execute(f"PRAGMA table_info({table})").fetchall()]
    if not existing:
        if not config.create_table:
            raise StepFailure(f"missing table: {config.table!r} does not exist and create_table is off")
        definitions = [f"{quote_sqlite(f.name)} {sqlite_type(f.type)}" for f in schema]
        if config.key:
            definitions.append(f"PRIMARY KEY ({', '.join(quote_sqlite(k) for k in config.key)})")
        conn.execute(f"CREATE TABLE {table} ({', '.join(definitions)})")
        return
    extra = [name for name in schema.names if name not in existing]
    if extra:
        raise StepFailure(f"schema drift: staged column(s) {extra} are not in table {config.table!r}")
