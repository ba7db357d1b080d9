"""What the SQL adapters share to load a table once: the load ledger, target preparation, the guarded load.

Idempotence: one transaction does the data change and records (dag_id, run_id, task_id) in the target
database's ``etl_load_ledger``. A retried append whose earlier try committed finds its ledger row and skips;
the other modes are idempotent by construction and refresh the ledger row. PostgreSQL and SQLite differ only
by their :class:`Dialect` (placeholders, type names, Arrow -> column types) and their transaction handling.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from django_etl.dataplane.base import LoadRequest
from django_etl.errors import StepFailure

LEDGER = "etl_load_ledger"
SKIPPED = "already loaded by an earlier try"


def fault(point: str) -> None:
    """A named point of a load ("before_commit", "after_commit"); tests make it raise to simulate a crash."""


def split_table_name(table: str) -> tuple[str, ...]:
    """'schema.table' -> ('schema', 'table'); each part is quoted later, never formatted into SQL."""
    parts = tuple(part.strip().strip('"') for part in table.split("."))
    if not 1 <= len(parts) <= 2 or not all(parts):
        raise ValueError(f"table {table!r} must be 'table' or 'schema.table'")
    return parts


def quote(identifier: str) -> str:
    """An SQL identifier in double quotes (the same form in PostgreSQL and SQLite)."""
    return '"' + identifier.replace('"', '""') + '"'


def qualified(parts: Sequence[str]) -> str:
    return ".".join(quote(p) for p in parts)


@dataclass(frozen=True)
class Dialect:
    """How one SQL engine spells what the ledger and target preparation need."""

    name: str
    placeholder: str  # "%s" (psycopg) or "?" (sqlite3)
    text: str
    bigint: str
    timestamp: str
    now: str
    column_type: Callable[[pa.DataType], str]  # the column type a staged Arrow type is created as

    def marks(self, count: int) -> str:
        return ", ".join([self.placeholder] * count)


class Ledger:
    """The ``etl_load_ledger`` table of one target database: which try loaded which target, and how many rows."""

    def __init__(self, dialect: Dialect, parts: Sequence[str]) -> None:
        self.dialect = dialect
        self.table = qualified([*parts, LEDGER])

    def ensure(self, conn: Any) -> None:
        d = self.dialect
        conn.execute(
            f"CREATE TABLE IF NOT EXISTS {self.table} (dag_id {d.text} NOT NULL, run_id {d.text} NOT NULL, "
            f"task_id {d.text} NOT NULL, target {d.text} NOT NULL, rows {d.bigint} NOT NULL, "
            f"loaded_at {d.timestamp} NOT NULL DEFAULT {d.now}, PRIMARY KEY (dag_id, run_id, task_id))"
        )

    def already_loaded(self, conn: Any, identity: tuple[str, str, str]) -> bool:
        p = self.dialect.placeholder
        row = conn.execute(
            f"SELECT rows FROM {self.table} WHERE dag_id = {p} AND run_id = {p} AND task_id = {p}",
            list(identity),
        ).fetchone()
        return row is not None

    def record(self, conn: Any, identity: tuple[str, str, str], target: str, rows: int) -> None:
        conn.execute(
            f"INSERT INTO {self.table} (dag_id, run_id, task_id, target, rows) VALUES ({self.dialect.marks(5)}) "
            "ON CONFLICT (dag_id, run_id, task_id) DO UPDATE SET rows = EXCLUDED.rows, "
            f"loaded_at = {self.dialect.now}",
            [*identity, target, rows],
        )


def prepare_target(
    conn: Any,
    dialect: Dialect,
    request: LoadRequest,
    parts: Sequence[str],
    existing: list[str],
    schema: pa.Schema,
) -> None:
    """Create the table from the staged schema when allowed; refuse staged columns the table lacks.

    ``existing``: the table's columns in order, empty when it does not exist.
    """
    if not existing:
        if not request.create_table:
            raise StepFailure(f"missing table: {request.table!r} does not exist and create_table is off")
        definitions = [f"{quote(f.name)} {dialect.column_type(f.type)}" for f in schema]
        if request.key:
            definitions.append(f"PRIMARY KEY ({', '.join(quote(k) for k in request.key)})")
        conn.execute(f"CREATE TABLE IF NOT EXISTS {qualified(parts)} ({', '.join(definitions)})")
        return
    extra = [name for name in schema.names if name not in existing]
    if extra:
        raise StepFailure(
            f"schema drift: staged column(s) {extra} are not in table {request.table!r} (columns: {existing})"
        )
    missing_keys = [k for k in request.key if k not in schema.names]
    if missing_keys:
        raise StepFailure(f"key column(s) {missing_keys} are not in the staged dataset")


def guarded_load(
    conn: Any,
    ledger: Ledger,
    request: LoadRequest,
    prepare: Callable[[], None],
    write_rows: Callable[[], int],
) -> int | None:
    """Inside the caller's open transaction: the rows written, or None when this append already committed."""
    if request.mode == "append" and ledger.already_loaded(conn, request.identity):
        return None
    prepare()
    rows = write_rows()
    fault("before_commit")
    ledger.record(conn, request.identity, str(request.table), rows)
    return rows
