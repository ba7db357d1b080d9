"""What the SQL adapters share to load a table once: the load ledger, target preparation, the guarded load.

Idempotence: one transaction does the data change and records (dag_id, run_id, task_id) in the target
database's ``etl_load_ledger``. A retried append whose earlier try committed finds its ledger row and skips;
the other modes are idempotent by construction and refresh the ledger row. PostgreSQL and SQLite differ only
by their :class:`Dialect` (placeholders, type names, Arrow -> column types) and their transaction handling.
Each ledger row also keeps the columns the load staged, so a later load knows which of the table's columns
this platform wrote (``drift.py``: what ``on_schema_change`` compares).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from django_etl.dataplane.base import LoadRequest
from django_etl.dataplane.drift import SchemaChangeError, SchemaChanges, compare
from django_etl.errors import StepFailure

LEDGER = "etl_load_ledger"
STAGED_COLUMNS = "staged_columns"  # JSON: [{"name", "type"}] of what each load wrote
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
    # The table's columns and their declared types, in order (empty when it does not exist).
    describe: Callable[[Any, Sequence[str]], dict[str, str]] | None = None
    # ALTER ... TYPE for sync_all_columns ({table}, {column}, {type}); None: the engine cannot.
    alter_type: str | None = None

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
            f"loaded_at {d.timestamp} NOT NULL DEFAULT {d.now}, {STAGED_COLUMNS} {d.text}, "
            "PRIMARY KEY (dag_id, run_id, task_id))"
        )
        if not self._has_staged_columns(conn):  # a ledger made before loads kept their columns
            try:
                conn.execute(f"ALTER TABLE {self.table} ADD COLUMN {STAGED_COLUMNS} {d.text}")
            except Exception:
                if not self._has_staged_columns(conn):  # else another load added it first
                    raise

    def _has_staged_columns(self, conn: Any) -> bool:
        # Outside any transaction (the callers' autocommit): a failed probe aborts nothing.
        try:
            conn.execute(f"SELECT {STAGED_COLUMNS} FROM {self.table} WHERE 1 = 0").fetchall()
        except Exception:
            return False
        return True

    def loaded_columns(self, conn: Any, target: str) -> set[str]:
        """Every column earlier loads into ``target`` staged (from this ledger)."""
        rows = conn.execute(
            f"SELECT DISTINCT {STAGED_COLUMNS} FROM {self.table} WHERE target = {self.dialect.placeholder} "
            f"AND {STAGED_COLUMNS} IS NOT NULL",
            [target],
        ).fetchall()
        names: set[str] = set()
        for (document,) in rows:
            names.update(entry["name"] for entry in json.loads(document))
        return names

    def already_loaded(self, conn: Any, identity: tuple[str, str, str]) -> bool:
        p = self.dialect.placeholder
        row = conn.execute(
            f"SELECT rows FROM {self.table} WHERE dag_id = {p} AND run_id = {p} AND task_id = {p}",
            list(identity),
        ).fetchone()
        return row is not None

    def record(
        self,
        conn: Any,
        identity: tuple[str, str, str],
        target: str,
        rows: int,
        columns: list[dict[str, str]] | None = None,
    ) -> None:
        conn.execute(
            f"INSERT INTO {self.table} (dag_id, run_id, task_id, target, rows, {STAGED_COLUMNS}) "
            f"VALUES ({self.dialect.marks(6)}) ON CONFLICT (dag_id, run_id, task_id) DO UPDATE SET "
            f"rows = EXCLUDED.rows, {STAGED_COLUMNS} = EXCLUDED.{STAGED_COLUMNS}, loaded_at = {self.dialect.now}",
            [*identity, target, rows, json.dumps(columns) if columns is not None else None],
        )


@dataclass
class TargetPlan:
    """What target preparation settled: the columns this load writes, and what changed since earlier loads."""

    columns: list[dict[str, str]] = field(default_factory=list)
    changes: SchemaChanges | None = None


def prepare_target(
    conn: Any,
    dialect: Dialect,
    request: LoadRequest,
    parts: Sequence[str],
    existing: list[str],
    dataset: Any,
    book: Ledger | None = None,
) -> TargetPlan:
    """Create the table from the staged schema when allowed; else meet schema changes per on_schema_change.

    ``existing``: the table's columns in order, empty when it does not exist. ``dataset`` is the staged
    reader: ``ignore`` narrows it to the table's columns (``select``), and ``dataset.schema_changes`` tells
    the load step what changed (also when a later statement fails).
    """
    schema: pa.Schema = dataset.schema
    missing_keys = [k for k in request.key if k not in schema.names]
    if missing_keys:
        raise StepFailure(f"key column(s) {missing_keys} are not in the staged dataset")
    if not existing:
        if not request.create_table:
            raise StepFailure(f"missing table: {request.table!r} does not exist and create_table is off")
        definitions = [f"{quote(f.name)} {dialect.column_type(f.type)}" for f in schema]
        if request.key:
            definitions.append(f"PRIMARY KEY ({', '.join(quote(k) for k in request.key)})")
        conn.execute(f"CREATE TABLE IF NOT EXISTS {qualified(parts)} ({', '.join(definitions)})")
        return TargetPlan(_fields(schema))
    columns = dialect.describe(conn, parts) if dialect.describe else dict.fromkeys(existing, "")
    before = book.loaded_columns(conn, str(request.table)) if book is not None else set()
    changes = compare(str(request.table), request.on_schema_change, schema, columns, before, dialect.name)
    if not changes:
        return TargetPlan(_fields(schema))
    dataset.schema_changes = changes
    if changes.option == "fail":
        raise SchemaChangeError(changes)
    target = qualified(parts)
    if changes.option == "ignore":
        kept = [name for name in schema.names if name in columns]
        dataset.select(kept)
        if changes.added:
            changes.applied.append(f"staged column(s) {changes.added} not loaded")
    else:
        for name in changes.added:
            kind = dialect.column_type(schema.field(name).type)
            conn.execute(f"ALTER TABLE {target} ADD COLUMN {quote(name)} {kind}")
        if changes.added:
            changes.applied.append(f"column(s) {changes.added} added")
    if changes.option == "sync_all_columns":
        for name in changes.missing:
            conn.execute(f"ALTER TABLE {target} DROP COLUMN {quote(name)}")
        if changes.missing:
            changes.applied.append(f"column(s) {changes.missing} dropped")
        retyped = [column for column, _, _ in changes.retyped]
        if retyped and dialect.alter_type:
            for name in retyped:
                kind = dialect.column_type(schema.field(name).type)
                conn.execute(dialect.alter_type.format(table=target, column=quote(name), type=kind))
            changes.applied.append(f"column(s) {retyped} changed to the staged type")
        elif retyped:
            changes.applied.append(
                f"column(s) {retyped} keep their declared type ({dialect.name} cannot alter it)"
            )
    elif changes.missing:
        changes.applied.append(f"column(s) {changes.missing} left NULL in the new rows")
    if changes.retyped and changes.option in ("ignore", "append_new_columns"):
        changes.applied.append("retyped values are cast to the table's types")
    return TargetPlan(_fields(dataset.schema), changes)


def _fields(schema: pa.Schema) -> list[dict[str, str]]:
    return [{"name": f.name, "type": str(f.type)} for f in schema]


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
    plan = prepare()
    rows = write_rows()
    fault("before_commit")
    columns = plan.columns if isinstance(plan, TargetPlan) else None
    ledger.record(conn, request.identity, str(request.table), rows, columns)
    return rows
