"""Database connectors: PostgreSQL through psycopg 3 (server-side cursor reads) and SQLite."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pyarrow as pa

from django_etl.connectors.adapters.base import Adapter, SchemaDriftError, batches_of_rows

# PostgreSQL type OIDs -> Arrow types; anything else travels as text.
PG_TYPES: dict[int, pa.DataType] = {
    16: pa.bool_(),
    20: pa.int64(),
    21: pa.int64(),
    23: pa.int64(),
    700: pa.float64(),
    701: pa.float64(),
    1082: pa.date32(),
    1114: pa.timestamp("us"),
    1184: pa.timestamp("us", tz="UTC"),
    25: pa.string(),
    1043: pa.string(),
    1042: pa.string(),
}
NUMERIC_OID = 1700


def split_table_name(table: str) -> tuple[str, ...]:
    """'schema.table' -> ('schema', 'table'); each part is quoted later, never formatted into SQL."""
    parts = tuple(part.strip().strip('"') for part in table.split("."))
    if not 1 <= len(parts) <= 2 or not all(parts):
        raise ValueError(f"table {table!r} must be 'table' or 'schema.table'")
    return parts


class PostgresAdapter(Adapter):
    connector_type = "database"

    def connect(self, **extra: Any):
        import psycopg

        config = self.config
        params = {
            "host": config.get("host"),
            "port": config.get("port", 5432),
            "dbname": config.get("database"),
            "user": self.secret.get("user"),
            "password": self.secret.get("password"),
            "connect_timeout": 10,
            "application_name": "django-etl",
            **config.get("options", {}),
            **extra,
        }
        try:
            conn = psycopg.connect(**{k: v for k, v in params.items() if v is not None})
        except psycopg.OperationalError as exc:
            # Wrong password and unknown database are permanent; refused/timeouts may clear up.
            text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            permanent = any(w in text for w in ("password", "authentication", "does not exist", "role"))
            raise self.fail(f"cannot connect: {text}", retryable=not permanent) from None
        if config.get("schema"):
            from psycopg import sql

            conn.execute(sql.SQL("SET search_path TO {}, public").format(sql.Identifier(config["schema"])))
        return conn

    def check(self) -> str:
        with self.connect() as conn:
            version = conn.execute("SHOW server_version").fetchone()[0]
        return f"connected to PostgreSQL {version}, database {self.config.get('database')!r}"

    def read(self, request: dict[str, Any], batch_size: int) -> Iterator[pa.RecordBatch]:
        import psycopg

        query, params = self._query(request)
        try:
            with self.connect() as conn, conn.transaction(), conn.cursor(name="etl_extract") as cursor:
                cursor.itersize = batch_size
                cursor.execute(query, params)
                schema = pg_schema(cursor.description)
                while rows := cursor.fetchmany(batch_size):
                    yield rows_to_batch(rows, schema)
        except psycopg.errors.UndefinedTable as exc:
            raise self.fail(f"missing table: {first_line(exc)}") from None
        except (psycopg.errors.SyntaxError, psycopg.errors.UndefinedColumn) as exc:
            raise self.fail(f"bad query: {first_line(exc)}") from None
        except (psycopg.errors.LockNotAvailable, psycopg.errors.QueryCanceled) as exc:
            raise self.fail(f"timed out: {first_line(exc)}", retryable=True) from None
        except psycopg.OperationalError as exc:
            raise self.fail(f"connection lost: {first_line(exc)}", retryable=True) from None

    def _query(self, request: dict[str, Any]):
        from psycopg import sql

        watermark = request.get("watermark")
        if request.get("query"):
            text = request["query"].strip().rstrip(";")
            if watermark is None:
                return sql.SQL(text), None
            base = sql.SQL(text.replace("%", "%%"))  # the query's own % are not placeholders
            return (
                sql.SQL("SELECT * FROM ({}) AS etl_source WHERE {} > %s").format(
                    base, sql.Identifier(watermark["column"])
                ),
                [watermark["value"]],
            )
        if not request.get("table"):
            raise self.fail("the extract needs 'query' or 'table'")
        query = sql.SQL("SELECT * FROM {}").format(sql.Identifier(*split_table_name(request["table"])))
        if watermark is None:
            return query, None
        return sql.SQL("{} WHERE {} > %s").format(query, sql.Identifier(watermark["column"])), [
            watermark["value"]
        ]

    def sample(self, limit: int = 10) -> pa.Table:
        with self.connect() as conn:
            row = conn.execute(
                "SELECT table_schema, table_name FROM information_schema.tables "
                "WHERE table_schema NOT IN ('pg_catalog', 'information_schema') "
                "AND table_name <> 'etl_load_ledger' ORDER BY 1, 2 LIMIT 1"
            ).fetchone()
        if row is None:
            raise self.fail("the database has no table to preview")
        batches = list(self.read({"table": f"{row[0]}.{row[1]}"}, limit))
        return pa.Table.from_batches(batches[:1]).slice(0, limit) if batches else pa.table({})


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def pg_schema(description) -> pa.Schema:
    fields = []
    for column in description:
        if column.type_code == NUMERIC_OID:
            precision = column.precision or 38
            scale = column.scale if column.scale is not None else 9
            kind = (
                pa.decimal128(min(max(precision, 1), 38), scale) if column.precision else pa.decimal128(38, 9)
            )
        else:
            kind = PG_TYPES.get(column.type_code, pa.string())
        fields.append(pa.field(column.name, kind))
    return pa.schema(fields)


def rows_to_batch(rows: list[tuple], schema: pa.Schema) -> pa.RecordBatch:
    columns = list(zip(*rows, strict=True))
    arrays = []
    for index, field in enumerate(schema):
        values = columns[index]
        if pa.types.is_string(field.type):
            values = [_as_text(v) for v in values]
        arrays.append(pa.array(values, type=field.type))
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _as_text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, dict | list):
        return json.dumps(value, default=str)
    return str(value)


class SqliteAdapter(Adapter):
    connector_type = "database"

    def connect(self) -> sqlite3.Connection:
        try:
            return sqlite3.connect(self.config["path"], timeout=20)
        except sqlite3.Error as exc:
            raise self.fail(f"cannot open SQLite file {self.config['path']!r}: {exc}") from None

    def check(self) -> str:
        conn = self.connect()
        try:
            count = conn.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            raise self.fail(f"not a SQLite database: {exc}") from None
        finally:
            conn.close()
        return f"opened SQLite file with {count} table(s)"

    def read(self, request: dict[str, Any], batch_size: int) -> Iterator[pa.RecordBatch]:
        query, params = self._query(request)
        conn = self.connect()
        try:
            cursor = conn.execute(query, params)
            names = [d[0] for d in cursor.description]

            def rows():
                while chunk := cursor.fetchmany(batch_size):
                    for row in chunk:
                        yield {n: _sqlite_value(v) for n, v in zip(names, row, strict=True)}

            yield from batches_of_rows(rows(), batch_size)
        except sqlite3.OperationalError as exc:
            retryable = "locked" in str(exc)
            raise self.fail(f"query failed: {exc}", retryable=retryable) from None
        except SchemaDriftError:
            raise
        finally:
            conn.close()

    def _query(self, request: dict[str, Any]) -> tuple[str, list[Any]]:
        watermark = request.get("watermark")
        if request.get("query"):
            query = request["query"].strip().rstrip(";")
        elif request.get("table"):
            query = "SELECT * FROM " + ".".join(quote_sqlite(p) for p in split_table_name(request["table"]))
        else:
            raise self.fail("the extract needs 'query' or 'table'")
        if watermark is None:
            return query, []
        return (
            f"SELECT * FROM ({query}) AS etl_source WHERE {quote_sqlite(watermark['column'])} > ?",
            [watermark["value"]],
        )

    def sample(self, limit: int = 10) -> pa.Table:
        conn = self.connect()
        try:
            row = conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
                "AND name <> 'etl_load_ledger' ORDER BY name LIMIT 1"
            ).fetchone()
        finally:
            conn.close()
        if row is None:
            raise self.fail("the database has no table to preview")
        batches = list(self.read({"table": row[0]}, limit))
        return pa.Table.from_batches(batches[:1]).slice(0, limit) if batches else pa.table({})


def quote_sqlite(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _sqlite_value(value: Any) -> Any:
    return float(value) if isinstance(value, Decimal) else value
