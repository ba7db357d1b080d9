"""SQLite end to end: config, connect, read, and loads in the same four modes and ledger as PostgreSQL."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import pyarrow as pa
from pydantic import Field, model_validator

from django_etl.configmodel import Strict
from django_etl.dataplane import ledger
from django_etl.dataplane.base import Adapter, LoadRequest, Written
from django_etl.dataplane.batches import batches_of_rows, empty_batch
from django_etl.dataplane.files import path_refusal
from django_etl.dataplane.ledger import Dialect, Ledger, guarded_load, prepare_target, quote, split_table_name
from django_etl.dataplane.netpolicy import Allowance
from django_etl.dataplane.watchdog import StatementWatchdog, source_timeout
from django_etl.errors import SchemaDriftError, StepFailure

if TYPE_CHECKING:
    from django_etl.dataplane.staging import StagedReader

BUSY_TIMEOUT_SECONDS = 20
INSERT_BATCH_ROWS = 20_000
MAX_VALUE_BYTES = 100_000_000  # the largest text or blob a tenant's query may build (SQLITE_LIMIT_LENGTH)


class SqliteConnectorConfig(Strict):
    engine: Literal["sqlite"]
    path: str | None = Field(None, description="SQLite file path.")

    @model_validator(mode="after")
    def engine_needs(self) -> SqliteConnectorConfig:
        if not self.path:
            raise ValueError("a sqlite connector needs 'path'")
        return self

    def credential_keys(self) -> tuple[str, ...]:
        return ()


def sqlite_type(kind: pa.DataType) -> str:
    """The column type a staged Arrow type is created as (loads)."""
    if pa.types.is_integer(kind) or pa.types.is_boolean(kind):
        return "INTEGER"
    if pa.types.is_floating(kind) or pa.types.is_decimal(kind):
        return "REAL"
    return "TEXT"


def affinity_type(declared: str) -> pa.DataType:
    """The Arrow type of a column's declared SQLite type, by SQLite's affinity rules (null: unknown)."""
    kind = (declared or "").upper()
    if "INT" in kind:
        return pa.int64()
    if any(word in kind for word in ("CHAR", "CLOB", "TEXT")):
        return pa.string()
    if any(word in kind for word in ("REAL", "FLOA", "DOUB")):
        return pa.float64()
    if "BOOL" in kind:
        return pa.bool_()
    return pa.null()  # NUMERIC, dates, no type: SQLite keeps whatever each row holds


SQLITE = Dialect(
    name="sqlite",
    placeholder="?",
    text="TEXT",
    bigint="INTEGER",
    timestamp="TEXT",
    now="CURRENT_TIMESTAMP",
    column_type=sqlite_type,
    describe=lambda conn, parts: table_types(conn, parts),
)


def to_sqlite(value: Any) -> Any:
    # Timestamps as ISO text with a space, the form SQLite's date functions compare correctly.
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return value


def _sqlite_value(value: Any) -> Any:
    return float(value) if isinstance(value, Decimal) else value


class SqliteAdapter(Adapter):
    connector_type = "database"
    config_model = SqliteConnectorConfig
    reads_incrementally = True
    config: SqliteConnectorConfig

    @classmethod
    def refusals(cls, config: SqliteConnectorConfig, allowance: Allowance) -> list[tuple[str, str]]:
        reason = path_refusal(config.path, allowance)
        return [("config.path", reason)] if reason else []

    def confined_path(self) -> str:
        """The file's resolved path, inside the organization's file roots (the file connectors' rule)."""
        reason = path_refusal(self.config.path, self.allowance)
        if reason:
            raise self.fail(f"path {reason}")
        return str(Path(self.config.path).resolve())

    def connect(self) -> sqlite3.Connection:
        path = self.confined_path()
        try:
            return untrusted_file(sqlite3.connect(path, timeout=BUSY_TIMEOUT_SECONDS))
        except sqlite3.Error as exc:
            raise self.fail(f"cannot open SQLite file {self.config.path!r}: {exc}") from None

    def connect_read_only(self) -> sqlite3.Connection:
        """A connection for tenant-written queries: the file opened read-only, an authorizer that allows reading.

        ``mode=ro`` makes SQLite refuse every write to the file; the authorizer also refuses ATTACH (which
        would open another file), PRAGMA, and every action but reading tables and calling functions, so
        neither ``ATTACH`` nor ``VACUUM INTO`` nor ``load_extension`` can reach beyond this one file.
        """
        from urllib.parse import quote as url_quote

        uri = f"file:{url_quote(self.confined_path())}?mode=ro"
        try:
            conn = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_SECONDS)
        except sqlite3.Error as exc:
            raise self.fail(f"cannot open SQLite file {self.config.path!r} read-only: {exc}") from None
        conn.set_authorizer(_read_only_authorizer)
        untrusted_file(conn)
        # zeroblob(10**9), repeated replace(): no single value may grow past this (the default is 1 GB).
        conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, MAX_VALUE_BYTES)
        return conn

    def check(self) -> str:
        conn = self.connect_read_only()
        try:
            count = conn.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            raise self.fail(f"not a SQLite database: {exc}") from None
        finally:
            conn.close()
        return f"opened SQLite file with {count} table(s)"

    def read(self, request: dict[str, Any], batch_size: int) -> Iterator[pa.RecordBatch]:
        query, params = self._query(request)
        conn = self.connect_read_only()
        # SQLite has no statement timeout: the watchdog interrupts a statement (the query, a fetch) past it.
        watchdog = StatementWatchdog(source_timeout(), conn.interrupt)
        try:
            with watchdog.statement():
                cursor = conn.execute(query, params)
            names = [d[0] for d in cursor.description]

            def rows():
                while True:
                    with watchdog.statement():
                        chunk = cursor.fetchmany(batch_size)
                    if not chunk:
                        return
                    for row in chunk:
                        yield {n: _sqlite_value(v) for n, v in zip(names, row, strict=True)}

            empty = True
            for batch in batches_of_rows(rows(), batch_size):
                empty = False
                yield batch
            if empty:  # no rows: the columns (and a table's declared types) still say what the dataset is
                yield empty_batch(self.result_schema(names, request.get("table")))
        except sqlite3.DatabaseError as exc:
            if "not authorized" in str(exc) or "readonly" in str(exc):
                raise self.fail(f"source queries may only read this file: {exc}") from None
            if watchdog.fired and "interrupted" in str(exc):
                raise self.fail(
                    f"timed out: the query ran past ETL_SOURCE_STATEMENT_TIMEOUT ({watchdog.seconds:g} s)",
                    retryable=True,
                ) from None
            retryable = isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc)
            raise self.fail(f"query failed: {exc}", retryable=retryable) from None
        except SchemaDriftError:
            raise
        finally:
            conn.close()

    def result_schema(self, names: list[str], table: str | None) -> pa.Schema:
        """A result's columns, typed by the table's declared types when it reads one table (else unknown)."""
        declared: dict[str, pa.DataType] = {}
        if table and not any(ch in table for ch in ".;"):
            # A connection of our own (no tenant SQL runs on it): the read-only one's authorizer refuses PRAGMA.
            from urllib.parse import quote as url_quote

            conn = sqlite3.connect(f"file:{url_quote(self.confined_path())}?mode=ro", uri=True)
            try:
                info = conn.execute(f"PRAGMA table_info({quote(table)})").fetchall()
                declared = {row[1]: affinity_type(row[2]) for row in info}
            except sqlite3.DatabaseError:
                pass
            finally:
                conn.close()
        return pa.schema([(name, declared.get(name, pa.null())) for name in names])

    def _query(self, request: dict[str, Any]) -> tuple[str, list[Any]]:
        watermark = request.get("watermark")
        if request.get("query"):
            # Always a subquery: only a SELECT (or WITH ... SELECT) can stand there, never VACUUM or ATTACH.
            query = f"SELECT * FROM ({request['query'].strip().rstrip(';')}\n) AS etl_source"
        elif request.get("table"):
            query = "SELECT * FROM " + ledger.qualified(split_table_name(request["table"]))
        else:
            raise self.fail("the extract needs 'query' or 'table'")
        if watermark is None:
            return query, []
        return (
            f"SELECT * FROM ({query}) AS etl_source WHERE {quote(watermark['column'])} > ?",
            [watermark["value"]],
        )

    def sample(self, limit: int = 10) -> pa.Table:
        conn = self.connect_read_only()
        try:
            row = conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
                f"AND name <> '{ledger.LEDGER}' ORDER BY name LIMIT 1"
            ).fetchone()
        finally:
            conn.close()
        if row is None:
            raise self.fail("the database has no table to preview")
        batches = list(self.read({"table": row[0]}, limit))
        return pa.Table.from_batches(batches[:1]).slice(0, limit) if batches else pa.table({})

    def load(self, request: LoadRequest, dataset: StagedReader) -> Written:
        """Insert a staged dataset into ``request.table`` in one transaction that also records the ledger row."""
        if not request.table:
            raise StepFailure("a database load needs 'table'")
        parts = split_table_name(request.table)
        book = Ledger(SQLITE, ())  # one ledger per SQLite file, in its main database
        conn = self.connect()
        conn.isolation_level = None  # explicit BEGIN/COMMIT below
        try:
            book.ensure(conn)
            conn.execute("BEGIN IMMEDIATE")
            try:
                rows = guarded_load(
                    conn,
                    book,
                    request,
                    lambda: prepare_target(
                        conn, SQLITE, request, parts, table_columns(conn, parts), dataset, book
                    ),
                    lambda: write_rows(conn, request, parts, dataset),
                )
                conn.execute("COMMIT" if rows is not None else "ROLLBACK")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            if rows is None:
                return self._written(request, 0, skipped=ledger.SKIPPED)
            ledger.fault("after_commit")
        except sqlite3.OperationalError as exc:
            text = str(exc)
            if "no such table" in text:
                raise StepFailure(f"missing table: {text}") from None
            raise StepFailure(f"SQLite load failed: {text}", retryable="locked" in text) from None
        except sqlite3.DatabaseError as exc:
            raise StepFailure(f"SQLite load into {request.table!r} refused: {exc}") from None
        finally:
            conn.close()
        return self._written(request, rows)

    def _written(self, request: LoadRequest, rows: int, skipped: str | None = None) -> Written:
        return Written(str(request.table), f"sqlite:///{self.config.path}#{request.table}", rows, skipped)


def table_columns(conn: sqlite3.Connection, parts: tuple[str, ...]) -> list[str]:
    """The table's columns in order; empty when it does not exist."""
    return [r[1] for r in conn.execute(f"PRAGMA table_info({ledger.qualified(parts)})").fetchall()]


def table_types(conn: sqlite3.Connection, parts: tuple[str, ...]) -> dict[str, str]:
    """The table's columns and their declared types, in order."""
    return {r[1]: r[2] for r in conn.execute(f"PRAGMA table_info({ledger.qualified(parts)})").fetchall()}


def write_rows(conn: sqlite3.Connection, request: LoadRequest, parts: tuple[str, ...], dataset) -> int:
    table = ledger.qualified(parts)
    columns = dataset.schema.names
    if request.mode == "replace":
        conn.execute(f"DELETE FROM {table}")
    elif request.mode == "replace_interval":
        start, end = request.interval()
        column = quote(request.interval_column)
        conn.execute(
            f"DELETE FROM {table} WHERE {column} >= ? AND {column} < ?", [to_sqlite(start), to_sqlite(end)]
        )
    names = ", ".join(quote(c) for c in columns)
    statement = f"INSERT INTO {table} ({names}) VALUES ({SQLITE.marks(len(columns))})"
    if request.mode == "upsert":
        keys = ", ".join(quote(k) for k in request.key)
        others = [c for c in columns if c not in request.key]
        action = (
            "DO UPDATE SET " + ", ".join(f"{quote(c)} = excluded.{quote(c)}" for c in others)
            if others
            else "DO NOTHING"
        )
        statement += f" ON CONFLICT ({keys}) {action}"
    rows = 0
    for batch in dataset.to_batches(batch_size=INSERT_BATCH_ROWS):
        values = [[to_sqlite(v) for v in row.values()] for row in batch.to_pylist()]
        conn.executemany(statement, values)
        rows += batch.num_rows
    return rows


def untrusted_file(conn: sqlite3.Connection) -> sqlite3.Connection:
    """SQLite's settings for a database file a tenant supplied (sqlite.org/security.html).

    Defensive mode refuses what could corrupt the file (``writable_schema``, raw page writes); an untrusted
    schema may not call functions with side effects from its views, triggers or defaults.
    """
    conn.setconfig(sqlite3.SQLITE_DBCONFIG_DEFENSIVE, True)
    conn.setconfig(sqlite3.SQLITE_DBCONFIG_TRUSTED_SCHEMA, False)
    return conn


# What a tenant-written query may do: read tables and call ordinary functions (never load_extension).
_READ_ACTIONS = frozenset({sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_RECURSIVE})


def _read_only_authorizer(
    action: int, arg1: str | None, arg2: str | None, database: str | None, _: Any
) -> int:
    if action in _READ_ACTIONS:
        return sqlite3.SQLITE_OK
    if action == sqlite3.SQLITE_FUNCTION and (arg2 or "").lower() != "load_extension":
        return sqlite3.SQLITE_OK
    return sqlite3.SQLITE_DENY
