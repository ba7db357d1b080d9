"""PostgreSQL end to end, as a provider's hook: config, connect, read (server-side cursor), COPY loads, types.

Reads stream ``COPY (query) TO STDOUT`` into Arrow batches parsed by Arrow (``pgcopy.py``; PostgreSQL -> Arrow
types by OID, the same as the row-by-row cursor path that previews use). Loads COPY the
staged dataset in (binary through pgpq when every column maps, CSV text otherwise) in one of four modes —
append, replace, upsert, replace_interval — all atomic and recorded in the shared load ledger.
"""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Literal

import pyarrow as pa
import pyarrow.csv as pacsv
from pydantic import Field, field_validator, model_validator

from django_etl import conf
from django_etl.configmodel import Strict
from django_etl.dataplane import ledger
from django_etl.dataplane.base import Adapter, LoadRequest, Written
from django_etl.dataplane.batches import empty_batch
from django_etl.dataplane.ledger import Dialect, Ledger, guarded_load, prepare_target, split_table_name
from django_etl.dataplane.netpolicy import Allowance, NetworkRefused, check_host_syntax, refusal_at_save
from django_etl.dataplane.pgread import side_effect_refusal
from django_etl.dataplane.watchdog import StatementWatchdog, source_timeout
from django_etl.errors import StepFailure, first_line

if TYPE_CHECKING:
    from django_etl.dataplane.staging import StagedReader

CONNECT_TIMEOUT_SECONDS = 10
LOCK_TIMEOUT = "60s"
COPY_BATCH_ROWS = 100_000
# Secret keys a PostgreSQL connector reads from its credential.
CREDENTIAL_KEYS = ("user", "password")


# libpq parameters a connector may set. Each only tunes the connection to the checked host: TLS mode and
# versions, timeouts and keepalives, the name shown in pg_stat_activity, channel binding.
SAFE_OPTIONS = frozenset(
    {
        "sslmode",
        "connect_timeout",
        "application_name",
        "channel_binding",
        "sslsni",
        "sslnegotiation",
        "ssl_min_protocol_version",
        "ssl_max_protocol_version",
        "keepalives",
        "keepalives_idle",
        "keepalives_interval",
        "keepalives_count",
        "tcp_user_timeout",
        "target_session_attrs",
    }
)
# Parameters that name another address or read files of the worker: only when ETL_POSTGRES_ALLOWED_OPTIONS
# lists them. Everything else (options, host, user, requirepeer, krbsrvname…) is never a connector's.
OPERATOR_OPTIONS = frozenset(
    {
        "hostaddr",
        "passfile",
        "service",
        "sslcert",
        "sslkey",
        "sslrootcert",
        "sslcrl",
        "sslcrldir",
        "sslpassword",
    }
)
# Where libpq looks for ambient credentials of the worker unless told otherwise (docs/security.md).
NO_FILE = "/nonexistent/django-etl-none"


def allowed_options() -> frozenset[str]:
    """SAFE_OPTIONS plus the operator-opened ones of ETL_POSTGRES_ALLOWED_OPTIONS."""
    return SAFE_OPTIONS | (OPERATOR_OPTIONS & set(conf.value("ETL_POSTGRES_ALLOWED_OPTIONS") or ()))


class PostgresConnectorConfig(Strict):
    engine: Literal["postgresql"]
    host: str | None = Field(None, description="A host name or an IP address (no socket path, no list).")
    port: int = Field(5432, ge=1, le=65535)
    database: str | None = None
    schema_: str | None = Field(None, alias="schema")
    options: dict[str, Any] = Field(
        default_factory=dict, description="Extra libpq parameters from an allow-list (sslmode…)."
    )

    @field_validator("host")
    @classmethod
    def one_host(cls, host: str | None) -> str | None:
        if host is not None:
            try:
                check_host_syntax(host, "host")
            except NetworkRefused as exc:
                raise ValueError(str(exc)) from None
        return host

    @field_validator("options")
    @classmethod
    def safe_options(cls, options: dict[str, Any]) -> dict[str, Any]:
        allowed = allowed_options()
        refused = sorted(key for key in options if key not in allowed)
        if refused:
            raise ValueError(
                f"{', '.join(map(repr, refused))}: not an allowed connection option (allowed: "
                f"{', '.join(sorted(allowed))}; ETL_POSTGRES_ALLOWED_OPTIONS opens "
                f"{', '.join(sorted(OPERATOR_OPTIONS))})"
            )
        for key, value in options.items():
            if isinstance(value, bool) or not isinstance(value, str | int | float) or "\x00" in str(value):
                raise ValueError(f"{key!r}: a connection option is a plain string or number")
        return options

    @model_validator(mode="after")
    def engine_needs(self) -> PostgresConnectorConfig:
        if not (self.host and self.database):
            raise ValueError("a postgresql connector needs 'host' and 'database'")
        return self

    def credential_keys(self) -> tuple[str, ...]:
        return CREDENTIAL_KEYS


# ---------------------------------------------------------------- type maps

# PostgreSQL type OIDs -> Arrow types (reads); anything else travels as text.
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


def pg_type(kind: pa.DataType) -> str:
    """The column type a staged Arrow type is created as (loads)."""
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

POSTGRES = Dialect(
    name="postgresql",
    placeholder="%s",
    text="text",
    bigint="bigint",
    timestamp="timestamptz",
    now="now()",
    column_type=pg_type,
    describe=lambda conn, parts: table_types(conn, parts),
    alter_type="ALTER TABLE {table} ALTER COLUMN {column} TYPE {type} USING {column}::{type}",
)


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


# ---------------------------------------------------------------- the adapter


TIMEOUT_HINT = "a statement of a source query may run ETL_SOURCE_STATEMENT_TIMEOUT seconds"


class PostgresAdapter(Adapter):
    connector_type = "database"
    config_model = PostgresConnectorConfig
    reads_incrementally = True
    config: PostgresConnectorConfig

    @classmethod
    def refusals(cls, config: PostgresConnectorConfig, allowance: Allowance) -> list[tuple[str, str]]:
        address = config.options.get("hostaddr")  # only when the operator opened it: then it is the target
        if address:
            reason = refusal_at_save(allowance, str(address), config.port, key="options.hostaddr")
            return [("config.options.hostaddr", reason)] if reason else []
        reason = refusal_at_save(allowance, config.host or "", config.port, key="host")
        return [("config.host", reason)] if reason else []

    def connection_params(self, **extra: Any) -> dict[str, Any]:
        """libpq parameters: the pinned, checked address, the credential, and nothing of the worker's own."""
        config = self.config
        options = dict(config.options)
        refused = sorted(set(options) - allowed_options())  # a config saved before the allow-list
        if refused:
            raise self.fail(f"connection option(s) {', '.join(refused)} are not allowed")
        if options.get("hostaddr"):
            hostaddr = self.pin(str(options.pop("hostaddr")), config.port, "options.hostaddr")
        else:
            hostaddr = self.pin(config.host or "", config.port, "host")
        user = self.secret.get("user")
        if not user:
            # libpq would otherwise log in as the worker's own OS user.
            raise self.fail("needs a credential with a 'user'")
        params = {
            "host": config.host,  # kept for TLS (SNI, verify-full) and messages; libpq connects to hostaddr
            "hostaddr": hostaddr,
            "port": config.port,
            "dbname": config.database,
            "user": user,
            "password": self.secret.get("password") or "",  # never PGPASSWORD from the worker's environment
            "connect_timeout": CONNECT_TIMEOUT_SECONDS,
            "application_name": "django-etl",
            # No ambient credentials: no ~/.pgpass, no client certificate of the worker, no Kerberos ticket.
            "passfile": NO_FILE,
            "sslcertmode": "disable",
            "gssencmode": "disable",
            "require_auth": "!gss,!sspi",
            **options,
            **extra,
        }
        if "sslcert" in options or "sslkey" in options:
            params["sslcertmode"] = "allow"  # the operator opened a client certificate for this connector
        return params

    def connect(self, **extra: Any):
        import psycopg

        params = self.connection_params(**extra)
        try:
            conn = psycopg.connect(**{k: v for k, v in params.items() if v is not None})
        except psycopg.OperationalError as exc:
            # Wrong password and unknown database are permanent; refused/timeouts may clear up.
            text = first_line(exc)
            permanent = any(w in text for w in ("password", "authentication", "does not exist", "role"))
            raise self.fail(f"cannot connect: {text}", retryable=not permanent) from None
        config = self.config
        if config.schema_:
            from psycopg import sql

            conn.execute(sql.SQL("SET search_path TO {}, public").format(sql.Identifier(config.schema_)))
        return conn

    def connect_read_only(self):
        """A connection for tenant-written queries: every transaction READ ONLY, every statement time-bounded.

        The server enforces both (``default_transaction_read_only`` and ``statement_timeout`` are set when the
        session starts, and psycopg opens each transaction with BEGIN READ ONLY): an extract query or a
        preview can read what the connector's login may read and change nothing, whatever functions it calls.
        """
        from django_etl import conf

        timeout_ms = int(float(conf.value("ETL_SOURCE_STATEMENT_TIMEOUT")) * 1000)
        conn = self.connect(
            options=f"-c default_transaction_read_only=on -c statement_timeout={timeout_ms}",
        )
        conn.commit()  # ends the transaction connect() opened to set the search path
        conn.read_only = True
        return conn

    def check(self) -> str:
        with self.connect_read_only() as conn:
            version = conn.execute("SHOW server_version").fetchone()[0]
        return f"connected to PostgreSQL {version}, database {self.config.database!r}"

    def read(self, request: dict[str, Any], batch_size: int) -> Iterator[pa.RecordBatch]:
        """The request's rows through ``COPY (query) TO STDOUT``, converted by Arrow (``pgcopy.py``).

        The query is first declared as a server-side cursor (sent alone, in the extended protocol: exactly one
        ``SELECT`` or ``VALUES``, as before) to learn its columns' types; nothing is fetched from it. The same
        query then runs inside ``COPY (…) TO STDOUT`` in the same read-only transaction, under the same
        statement timeout, which here bounds the whole read (one statement).
        """
        import psycopg

        from django_etl.dataplane.pgcopy import CopyPlan, copy_batches, rebatch

        query, params = self._query(request)
        with self._source_errors(), self.connect_read_only() as conn, conn.transaction():
            watchdog = StatementWatchdog(source_timeout(), conn.cancel_safe)
            # Text the way Arrow parses it; neither changes what the query computes.
            conn.execute("SET LOCAL client_encoding = 'UTF8'")
            conn.execute("SET LOCAL DateStyle = 'ISO'")
            with watchdog.statement(), conn.cursor(name="etl_extract") as cursor:
                cursor.execute(query, params)
                description = cursor.description
            schema = pg_schema(description)
            plan = CopyPlan(conn, description, schema)
            # The watermark's value merged as a quoted literal (COPY takes no parameters).
            text = psycopg.ClientCursor(conn).mogrify(query, params)
            statement = f"COPY ({text}\n) TO STDOUT (FORMAT csv)"
            empty = True
            with watchdog.statement():
                for batch in rebatch(copy_batches(conn, statement, plan), batch_size):
                    empty = False
                    yield batch
            if empty:  # no rows: the result's columns and types still say what the dataset is
                yield empty_batch(schema)

    def read_by_cursor(self, request: dict[str, Any], batch_size: int) -> Iterator[pa.RecordBatch]:
        """The same rows through a server-side cursor, converted row by row (previews: a few rows)."""
        query, params = self._query(request)
        with (
            self._source_errors(),
            self.connect_read_only() as conn,
            conn.transaction(),
            conn.cursor(name="etl_extract") as cursor,
        ):
            # The session's statement_timeout is one the query can switch off (set_config): the client
            # keeps the same limit on the query and on each fetch of its cursor.
            watchdog = StatementWatchdog(source_timeout(), conn.cancel_safe)
            cursor.itersize = batch_size
            with watchdog.statement():
                cursor.execute(query, params)
            schema = pg_schema(cursor.description)
            empty = True
            while True:
                with watchdog.statement():
                    rows = cursor.fetchmany(batch_size)
                if not rows:
                    break
                empty = False
                yield rows_to_batch(rows, schema)
            if empty:  # no rows: the result's columns and types still say what the dataset is
                yield empty_batch(schema)

    @contextmanager
    def _source_errors(self) -> Iterator[None]:
        """A source read's failures as connector errors: permanent when the query is at fault."""
        import psycopg

        try:
            yield
        except psycopg.errors.UndefinedTable as exc:
            raise self.fail(f"missing table: {first_line(exc)}") from None
        except (psycopg.errors.SyntaxError, psycopg.errors.UndefinedColumn) as exc:
            raise self.fail(f"bad query: {first_line(exc)}") from None
        except psycopg.errors.ReadOnlySqlTransaction as exc:
            raise self.fail(f"source queries are read-only: {first_line(exc)}") from None
        except (psycopg.errors.LockNotAvailable, psycopg.errors.QueryCanceled) as exc:
            raise self.fail(f"timed out: {first_line(exc)} ({TIMEOUT_HINT})", retryable=True) from None
        except psycopg.OperationalError as exc:
            raise self.fail(f"connection lost: {first_line(exc)}", retryable=True) from None
        except psycopg.Error as exc:  # refused by the server: a data-modifying CTE, a read-write switch...
            raise self.fail(f"query refused: {first_line(exc)}") from None
        except pa.ArrowInvalid as exc:
            raise self.fail(f"a value does not convert: {first_line(exc)}") from None

    def _query(self, request: dict[str, Any]):
        from psycopg import sql

        watermark = request.get("watermark")
        if request.get("query"):
            text = request["query"].strip().rstrip(";")
            # What BEGIN READ ONLY lets through (lo_import, query_to_xml…) is refused before anything is sent.
            refused = side_effect_refusal(text)
            if refused:
                raise self.fail(f"query refused: {refused}")
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
        with self.connect_read_only() as conn:
            row = conn.execute(
                "SELECT table_schema, table_name FROM information_schema.tables "
                "WHERE table_schema NOT IN ('pg_catalog', 'information_schema') "
                f"AND table_name <> '{ledger.LEDGER}' ORDER BY 1, 2 LIMIT 1"
            ).fetchone()
        if row is None:
            raise self.fail("the database has no table to preview")
        batches = self.read_by_cursor({"table": f"{row[0]}.{row[1]}"}, limit)
        first = next(batches, None)  # only the first batch is fetched
        batches.close()
        return pa.Table.from_batches([first]).slice(0, limit) if first is not None else pa.table({})

    def load(self, request: LoadRequest, dataset: StagedReader) -> Written:
        """COPY a staged dataset into ``request.table`` in one transaction that also records the ledger row."""
        import psycopg
        from psycopg import sql

        if not request.table:
            raise StepFailure("a database load needs 'table'")
        parts = split_table_name(request.table)
        target = sql.Identifier(*parts)
        book = Ledger(POSTGRES, parts[:-1])
        try:
            with self.connect(autocommit=True) as conn:
                conn.execute(f"SET lock_timeout = '{LOCK_TIMEOUT}'")
                book.ensure(conn)
                with conn.transaction():
                    # One try at a time per (run, task), whatever the mode.
                    conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", ["|".join(request.identity)])
                    rows = guarded_load(
                        conn,
                        book,
                        request,
                        lambda: prepare_target(
                            conn, POSTGRES, request, parts, table_columns(conn, parts), dataset, book
                        ),
                        # the staged columns the target takes (on_schema_change 'ignore' narrows them)
                        lambda: write_rows(conn, request, target, dataset.schema.names, dataset),
                    )
                if rows is None:
                    return self._written(request, 0, skipped=ledger.SKIPPED)
                ledger.fault("after_commit")
        except psycopg.errors.UndefinedTable as exc:
            raise StepFailure(f"missing table: {first_line(exc)}") from None
        except (psycopg.errors.LockNotAvailable, psycopg.errors.DeadlockDetected) as exc:
            raise StepFailure(
                f"lock timeout on {request.table!r}: {first_line(exc)}", retryable=True
            ) from None
        except (psycopg.DataError, psycopg.IntegrityError, psycopg.ProgrammingError) as exc:
            raise StepFailure(f"load into {request.table!r} refused: {first_line(exc)}") from None
        return self._written(request, rows)

    def _written(self, request: LoadRequest, rows: int, skipped: str | None = None) -> Written:
        uri = f"postgresql://{self.config.host}/{self.config.database}/{request.table}"
        return Written(str(request.table), uri, rows, skipped)


# ---------------------------------------------------------------- COPY and the load modes


def table_columns(conn, parts: tuple[str, ...]) -> list[str]:
    """The table's columns in order; empty when it does not exist (resolved like the load's own statements)."""
    rows = conn.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(%s) AND attnum > 0 "
        "AND NOT attisdropped ORDER BY attnum",
        [ledger.qualified(parts)],
    ).fetchall()
    return [r[0] for r in rows]


def table_types(conn, parts: tuple[str, ...]) -> dict[str, str]:
    """The table's columns and their declared types (``format_type``), in order."""
    rows = conn.execute(
        "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = to_regclass(%s) "
        "AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
        [ledger.qualified(parts)],
    ).fetchall()
    return dict(rows)


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


def write_rows(conn, request: LoadRequest, target, columns: list[str], dataset) -> int:
    from psycopg import sql

    column_list = sql.SQL(", ").join(map(sql.Identifier, columns))
    if request.mode == "append":
        return copy_into(conn, target, columns, dataset)
    if request.mode == "replace":
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
    if request.mode == "upsert":
        upsert(conn, list(request.key), target, temp, columns)
        return rows
    # replace_interval: every staged row must fall in the run's interval, or later runs would duplicate it.
    start, end = request.interval()
    column = sql.Identifier(request.interval_column)
    outside = conn.execute(
        sql.SQL("SELECT count(*) FROM {} WHERE {col} IS NULL OR {col} < %s OR {col} >= %s").format(
            temp, col=column
        ),
        [start, end],
    ).fetchone()[0]
    if outside:
        raise StepFailure(
            f"{outside} staged row(s) have {request.interval_column!r} outside the run's interval "
            f"[{start.isoformat()}, {end.isoformat()})"
        )
    conn.execute(
        sql.SQL("DELETE FROM {} WHERE {} >= %s AND {} < %s").format(target, column, column), [start, end]
    )
    conn.execute(
        sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {}").format(target, column_list, column_list, temp)
    )
    return rows
