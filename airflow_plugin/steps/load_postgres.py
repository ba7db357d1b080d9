"""Load a staged dataset into PostgreSQL by COPY: append, replace, upsert, replace_interval, all atomic.

Idempotence: one transaction does the data change and records (dag_id, run_id, task_id) in the target
database's ``etl_load_ledger``. A retried append whose earlier try committed finds its ledger row and skips;
the other modes are idempotent by construction and refresh the ledger row.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv

from airflow_plugin.steps.context import StepFailure, StepRun
from django_etl.connectors.adapters.database import split_table_name

LEDGER = "etl_load_ledger"
COPY_BATCH_ROWS = 100_000


def fault(point: str) -> None:
    """A named point of the load (tests make it raise to simulate a crash there)."""


def pg_type(kind: pa.DataType) -> str:
    if pa.types.is_boolean(kind):
        return "boolean"
    if pa.types.is_integer(kind):
        return "integer" if kind.bit_width <= 32 and pa.types.is_signed_integer(kind) else "bigint"
    if pa.types.is_floating(kind):
        return "double precision"
    if pa.types.is_decimal(kind):
        return f"numeric({kind.precision}, {kind.scale})"
    if pa.types.is_timestamp(kind):
        return "timestamptz" if kind.tz else "timestamp"
    if pa.types.is_date(kind):
        return "date"
    if pa.types.is_time(kind):
        return "time"
    if pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
        return "bytea"
    return "text"


# PostgreSQL column type -> the Arrow type pgpq encodes as that type's binary COPY form.
BINARY_TYPES: dict[str, pa.DataType] = {
    "int8": pa.int64(),
    "int4": pa.int32(),
    "int2": pa.int16(),
    "float8": pa.float64(),
    "float4": pa.float32(),
    "bool": pa.bool_(),
    "text": pa.string(),
    "varchar": pa.string(),
    "timestamptz": pa.timestamp("us", tz="UTC"),
    "timestamp": pa.timestamp("us"),
    "date": pa.date32(),
    "bytea": pa.binary(),
}


def encoded_chunks(
    batches: Iterator[pa.RecordBatch], encode, header: bytes = b"", footer=None
) -> Iterator[bytes]:
    """COPY payload produced on a helper thread, so encoding overlaps the server's COPY work."""
    chunks: queue.Queue[Any] = queue.Queue(maxsize=4)  # bounded: memory stays a few chunks deep
    done = object()

    def produce() -> None:
        try:
            if header:
                chunks.put(header)
            for batch in batches:
                chunks.put(encode(batch))
            if footer is not None:
                chunks.put(footer())
            chunks.put(done)
        except BaseException as exc:  # handed to the consumer, raised there
            chunks.put(exc)

    worker = threading.Thread(target=produce, name="etl-copy-encoder", daemon=True)
    worker.start()
    while True:
        item = chunks.get()
        if item is done:
            break
        if isinstance(item, BaseException):
            raise item
        yield item
    worker.join()


def encode_csv(batch: pa.RecordBatch) -> bytes:
    sink = pa.BufferOutputStream()
    pacsv.write_csv(batch, sink, write_options=pacsv.WriteOptions(include_header=False))
    return sink.getvalue()


def binary_schema(conn, table, columns: list[str], schema: pa.Schema) -> pa.Schema | None:
    """The Arrow schema to cast to for binary COPY into ``table``, or None when a column needs text COPY."""
    from psycopg import sql

    rows = conn.execute(
        "SELECT a.attname, t.typname FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid "
        "WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped",
        [sql.SQL("{}").format(table).as_string(conn)],
    ).fetchall()
    types = dict(rows)
    fields = []
    for name in columns:
        target = BINARY_TYPES.get(types.get(name, ""))
        if target is None:
            return None
        source = schema.field(name).type
        if (
            pa.types.is_timestamp(target)
            and pa.types.is_timestamp(source)
            and bool(source.tz) != bool(target.tz)
        ):
            return None  # naive <-> aware needs the server's time zone rules: let PostgreSQL parse text
        if not (source == target or _safe_cast(source, target)):
            return None
        fields.append(pa.field(name, target))
    return pa.schema(fields)


def _safe_cast(source: pa.DataType, target: pa.DataType) -> bool:
    numeric = pa.types.is_integer(source) or pa.types.is_floating(source)
    if pa.types.is_integer(target):
        return pa.types.is_integer(source)
    if pa.types.is_floating(target):
        return numeric
    if pa.types.is_string(target):
        return pa.types.is_string(source) or pa.types.is_large_string(source)
    if pa.types.is_timestamp(target):
        return pa.types.is_timestamp(source)
    if pa.types.is_date(target):
        return pa.types.is_date(source)
    return False


def load(step: StepRun, adapter, ref: dict[str, Any]) -> None:
    import psycopg
    from psycopg import sql

    config = step.config
    if not config.table:
        raise StepFailure("a database load needs 'table'")
    parts = split_table_name(config.table)
    target = sql.Identifier(*parts)
    ledger = sql.Identifier(*parts[:-1], LEDGER)
    dataset = step.staging.reader(ref["uri"])
    columns = dataset.schema.names
    try:
        with adapter.connect(autocommit=True) as conn:
            conn.execute("SET lock_timeout = '60s'")
            ensure_ledger(conn, ledger)
            with conn.transaction():
                # One try at a time per (run, task), whatever the mode.
                conn.execute(
                    "SELECT pg_advisory_xact_lock(hashtext(%s))",
                    [f"{step.dag_id}|{step.run_id}|{step.task_id}"],
                )
                if config.mode == "append" and already_loaded(conn, ledger, step):
                    step.log.info("this run and task already appended its rows: nothing to do")
                    step.result.details["skipped"] = "already loaded by an earlier try"
                    return
                prepare_target(conn, step, parts, dataset.schema)
                rows = write_rows(conn, step, target, columns, dataset)
                fault("before_commit")
                record(conn, ledger, step, config.table, rows)
            fault("after_commit")
    except psycopg.errors.UndefinedTable as exc:
        raise StepFailure(f"missing table: {first_line(exc)}") from None
    except (psycopg.errors.LockNotAvailable, psycopg.errors.DeadlockDetected) as exc:
        raise StepFailure(f"lock timeout on {config.table!r}: {first_line(exc)}", retryable=True) from None
    except (psycopg.DataError, psycopg.IntegrityError, psycopg.ProgrammingError) as exc:
        raise StepFailure(f"load into {config.table!r} refused: {first_line(exc)}") from None
    step.result.add_target(
        config.table,
        f"postgresql://{adapter.config.get('host')}/{adapter.config.get('database')}/{config.table}",
        rows,
        ref.get("schema", []),
    )


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def ensure_ledger(conn, ledger) -> None:
    from psycopg import sql

    conn.execute(
        sql.SQL(
            "CREATE TABLE IF NOT EXISTS {} (dag_id text NOT NULL, run_id text NOT NULL, task_id text NOT NULL, "
            "target text NOT NULL, rows bigint NOT NULL, loaded_at timestamptz NOT NULL DEFAULT now(), "
            "PRIMARY KEY (dag_id, run_id, task_id))"
        ).format(ledger)
    )


def already_loaded(conn, ledger, step: StepRun) -> bool:
    from psycopg import sql

    row = conn.execute(
        sql.SQL("SELECT rows FROM {} WHERE dag_id = %s AND run_id = %s AND task_id = %s").format(ledger),
        [step.dag_id, step.run_id, step.task_id],
    ).fetchone()
    return row is not None


def record(conn, ledger, step: StepRun, table: str, rows: int) -> None:
    from psycopg import sql

    conn.execute(
        sql.SQL(
            "INSERT INTO {} (dag_id, run_id, task_id, target, rows) VALUES (%s, %s, %s, %s, %s) "
            "ON CONFLICT (dag_id, run_id, task_id) DO UPDATE SET rows = EXCLUDED.rows, loaded_at = now()"
        ).format(ledger),
        [step.dag_id, step.run_id, step.task_id, table, rows],
    )


def table_columns(conn, parts: tuple[str, ...]) -> list[str]:
    """The table's columns in order; empty when it does not exist (resolved like the load's own statements)."""
    from psycopg import sql

    rows = conn.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(%s) AND attnum > 0 "
        "AND NOT attisdropped ORDER BY attnum",
        [sql.Identifier(*parts).as_string(conn)],
    ).fetchall()
    return [r[0] for r in rows]


def prepare_target(conn, step: StepRun, parts: tuple[str, ...], schema: pa.Schema) -> None:
    """Create the table from the staged schema when allowed; refuse staged columns the table lacks."""
    from psycopg import sql

    config = step.config
    existing = table_columns(conn, parts)
    if not existing:
        if not config.create_table:
            raise StepFailure(f"missing table: {config.table!r} does not exist and create_table is off")
        definitions = [
            sql.SQL("{} {}").format(sql.Identifier(f.name), sql.SQL(pg_type(f.type))) for f in schema
        ]
        if config.key:
            definitions.append(
                sql.SQL("PRIMARY KEY ({})").format(sql.SQL(", ").join(map(sql.Identifier, config.key)))
            )
        conn.execute(
            sql.SQL("CREATE TABLE IF NOT EXISTS {} ({})").format(
                sql.Identifier(*parts), sql.SQL(", ").join(definitions)
            )
        )
        return
    extra = [name for name in schema.names if name not in existing]
    if extra:
        raise StepFailure(
            f"schema drift: staged column(s) {extra} are not in table {config.table!r} (columns: {existing})"
        )
    missing_keys = [k for k in config.key if k not in schema.names]
    if missing_keys:
        raise StepFailure(f"key column(s) {missing_keys} are not in the staged dataset")


def copy_into(conn, table, columns: list[str], dataset, batch_rows: int = COPY_BATCH_ROWS) -> int:
    """COPY the dataset into ``table``: binary (pgpq) when every column maps, else CSV text."""
    from psycopg import sql

    target_schema = binary_schema(conn, table, columns, dataset.schema)
    rows = 0

    def counted() -> Iterator[pa.RecordBatch]:
        nonlocal rows
        scan = dataset.to_batches(batch_size=batch_rows, columns=columns)
        for batch in scan:
            rows += batch.num_rows
            yield batch if target_schema is None else batch.cast(target_schema)

    column_list = sql.SQL(", ").join(map(sql.Identifier, columns))
    if target_schema is not None:
        from pgpq import ArrowToPostgresBinaryEncoder

        encoder = ArrowToPostgresBinaryEncoder(target_schema)
        statement = sql.SQL("COPY {} ({}) FROM STDIN WITH (FORMAT binary)").format(table, column_list)
        chunks = encoded_chunks(counted(), encoder.write_batch, encoder.write_header(), encoder.finish)
    else:
        statement = sql.SQL("COPY {} ({}) FROM STDIN WITH (FORMAT csv)").format(table, column_list)
        chunks = encoded_chunks(counted(), encode_csv)
    with conn.cursor().copy(statement) as copy:
        for chunk in chunks:
            copy.write(chunk)
    return rows


def repeats_keys(conn, temp, key: list[str]) -> bool:
    """Whether a key occurs twice in the staged rows (asked of the server: no client memory per row)."""
    from psycopg import sql

    keys = sql.SQL(", ").join(map(sql.Identifier, key))
    query = sql.SQL("SELECT EXISTS (SELECT 1 FROM {} GROUP BY {} HAVING count(*) > 1)").format(temp, keys)
    return bool(conn.execute(query).fetchone()[0])


def upsert(conn, key: list[str], target, temp, columns: list[str]) -> None:
    """Update the rows whose key exists, insert the others: two set-based statements under a table lock.

    Twice as fast here as ``INSERT … ON CONFLICT`` (one speculative insertion per row), needs no unique
    constraint, and the SHARE ROW EXCLUSIVE lock keeps concurrent writers out between the two statements
    (readers go on). The last staged row of a key wins when the input repeats a key.
    """
    from psycopg import sql

    nulls = conn.execute(
        sql.SQL("SELECT count(*) FROM {} WHERE {}").format(
            temp, sql.SQL(" OR ").join(sql.SQL("{} IS NULL").format(sql.Identifier(k)) for k in key)
        )
    ).fetchone()[0]
    if nulls:
        raise StepFailure(f"{nulls} staged row(s) have a NULL in the upsert key {key}")
    column_list = sql.SQL(", ").join(map(sql.Identifier, columns))
    keys = sql.SQL(", ").join(map(sql.Identifier, key))
    if repeats_keys(conn, temp, key):  # one sort, only when needed
        source = sql.SQL("(SELECT DISTINCT ON ({keys}) {cols} FROM {temp} ORDER BY {keys}, ctid DESC)")
    else:
        source = sql.SQL("{temp}")
    source = source.format(keys=keys, cols=column_list, temp=temp)
    match = sql.SQL(" AND ").join(sql.SQL("t.{0} = s.{0}").format(sql.Identifier(k)) for k in key)
    conn.execute(sql.SQL("LOCK TABLE {} IN SHARE ROW EXCLUSIVE MODE").format(target))
    others = [c for c in columns if c not in key]
    if others:
        assignments = sql.SQL(", ").join(sql.SQL("{0} = s.{0}").format(sql.Identifier(c)) for c in others)
        conn.execute(
            sql.SQL("UPDATE {target} AS t SET {assignments} FROM {source} AS s WHERE {match}").format(
                target=target, assignments=assignments, source=source, match=match
            )
        )
    conn.execute(
        sql.SQL(
            "INSERT INTO {target} ({cols}) SELECT {cols} FROM {source} AS s "
            "WHERE NOT EXISTS (SELECT 1 FROM {target} AS t WHERE {match})"
        ).format(target=target, cols=column_list, source=source, match=match)
    )


def write_rows(conn, step: StepRun, target, columns: list[str], dataset) -> int:
    from psycopg import sql

    config = step.config
    column_list = sql.SQL(", ").join(map(sql.Identifier, columns))
    if config.mode == "append":
        return copy_into(conn, target, columns, dataset)
    if config.mode == "replace":
        conn.execute(sql.SQL("DELETE FROM {}").format(target))
        return copy_into(conn, target, columns, dataset)
    temp = sql.Identifier("etl_incoming")
    conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(temp))
    conn.execute(
        sql.SQL("CREATE TEMP TABLE {} ON COMMIT DROP AS SELECT {} FROM {} WITH NO DATA").format(
            temp, column_list, target
        )
    )
    rows = copy_into(conn, temp, columns, dataset)
    if config.mode == "upsert":
        upsert(conn, config.key, target, temp, columns)
        return rows
    # replace_interval: every staged row must fall in the run's interval, or later runs would duplicate it.
    start, end = step.data_interval_start, step.data_interval_end
    if start is None or end is None:
        raise StepFailure(
            "mode 'replace_interval' needs a run with a data interval (a scheduled run or backfill)"
        )
    column = sql.Identifier(config.interval_column)
    outside = conn.execute(
        sql.SQL("SELECT count(*) FROM {} WHERE {col} IS NULL OR {col} < %s OR {col} >= %s").format(
            temp, col=column
        ),
        [start, end],
    ).fetchone()[0]
    if outside:
        raise StepFailure(
            f"{outside} staged row(s) have {config.interval_column!r} outside the run's interval "
            f"[{start.isoformat()}, {end.isoformat()})"
        )
    conn.execute(
        sql.SQL("DELETE FROM {} WHERE {} >= %s AND {} < %s").format(target, column, column), [start, end]
    )
    conn.execute(
        sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {}").format(target, column_list, column_list, temp)
    )
    return rows
