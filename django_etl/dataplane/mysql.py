"""MySQL and MariaDB end to end, as a provider's hook: config, connect, streamed read-only reads, loads, types.

The driver is PyMySQL (pure Python: nothing to compile, no client library). Connections go to the address the
network policy checked (TLS still names the configured host), never read an option file, never send a local
file (``local_infile`` off, so ``LOAD DATA LOCAL INFILE`` is refused by the client as by the server), and run
one statement per call. Reads stream a server-side cursor (``SSCursor``) inside ``START TRANSACTION READ ONLY``
with a statement time limit (MariaDB's ``max_statement_time``, MySQL's ``max_execution_time``); the row
packets are split here into raw values, which become Arrow columns by Arrow's own casts. Loads insert in multi-row statements in one of the four
modes — append, replace, upsert (``INSERT … ON DUPLICATE KEY UPDATE``), replace_interval — in one InnoDB
transaction with the shared load ledger, so a retried load never duplicates rows.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

import pyarrow as pa
from pydantic import Field, field_validator, model_validator

from django_etl import conf
from django_etl.configmodel import Strict
from django_etl.dataplane import ledger
from django_etl.dataplane.base import Adapter, LoadRequest, Written
from django_etl.dataplane.batches import empty_batch
from django_etl.dataplane.ledger import (
    Dialect,
    Ledger,
    TargetPlan,
    guarded_load,
    prepare_target,
    quote,
    split_table_name,
)
from django_etl.dataplane.mysqlvalues import (
    column_array,
    family_name,
    mysql_type,
    result_schema,
    row_packets,
    split_rows,
    values_statements,
)
from django_etl.dataplane.netpolicy import Allowance, NetworkRefused, check_host_syntax, refusal_at_save
from django_etl.errors import StepFailure, first_line

if TYPE_CHECKING:
    from django_etl.dataplane.staging import StagedReader

CONNECT_TIMEOUT_SECONDS = 10
LOCK_WAIT_SECONDS = 60
INSERT_BATCH_ROWS = 50_000
CREDENTIAL_KEYS = ("user", "password")
# Key columns of text are created as VARCHAR: MySQL indexes no TEXT column without a prefix length.
KEY_TEXT = "VARCHAR(255)"

# Connection options a connector may set: each only tunes the connection to the checked host. Never
# init_command, local_infile, unix_socket, bind_address, read_default_file/group, client_flag or the ssl_* file
# paths (they would run SQL of the tenant's at connect, read worker files or reach another address).
OPTION_TYPES: dict[str, type | tuple[type, ...]] = {
    "charset": str,
    "collation": str,
    "connect_timeout": int,
    "read_timeout": int,
    "write_timeout": int,
    "ssl_disabled": bool,
    "ssl_verify_cert": bool,
    "ssl_verify_identity": bool,
}
_CHARSET = re.compile(r"^[A-Za-z0-9_]{1,64}$")


class MysqlConnectorConfig(Strict):
    engine: Literal["mysql"]
    host: str | None = Field(None, description="A host name or an IP address (no socket path, no list).")
    port: int = Field(3306, ge=1, le=65535)
    database: str | None = None
    options: dict[str, Any] = Field(
        default_factory=dict,
        description="Connection options from an allow-list: " + ", ".join(sorted(OPTION_TYPES)) + ".",
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
        refused = sorted(key for key in options if key not in OPTION_TYPES)
        if refused:
            raise ValueError(
                f"{', '.join(map(repr, refused))}: not an allowed connection option (allowed: "
                f"{', '.join(sorted(OPTION_TYPES))})"
            )
        for key, value in options.items():
            expected = OPTION_TYPES[key]
            if expected is int and (
                isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 3600
            ):
                raise ValueError(f"{key!r}: a whole number of seconds from 1 to 3600")
            if expected is bool and not isinstance(value, bool):
                raise ValueError(f"{key!r}: true or false")
            if expected is str and not (isinstance(value, str) and _CHARSET.match(value)):
                raise ValueError(f"{key!r}: a character set or collation name (letters, digits, _)")
        return options

    @model_validator(mode="after")
    def engine_needs(self) -> MysqlConnectorConfig:
        if not (self.host and self.database):
            raise ValueError("a mysql connector needs 'host' and 'database'")
        return self

    def credential_keys(self) -> tuple[str, ...]:
        return CREDENTIAL_KEYS


# ---------------------------------------------------------------- the dialect

MYSQL = Dialect(
    name="mysql",
    placeholder="%s",
    text="LONGTEXT",
    bigint="BIGINT",
    timestamp="DATETIME(6)",
    now="CURRENT_TIMESTAMP(6)",
    column_type=mysql_type,
    describe=lambda conn, parts: table_types(conn, parts),
    alter_type="ALTER TABLE {table} MODIFY COLUMN {column} {type}",
)


# ---------------------------------------------------------------- connections


def _pinned_connection_class():
    import pymysql

    class PinnedConnection(pymysql.connections.Connection):
        """A PyMySQL connection to a checked address; TLS (SNI, host name verification) still uses the name."""

        def __init__(self, *, server_name: str, **kwargs: Any) -> None:
            self.server_name = server_name
            super().__init__(**kwargs)

        def _request_authentication(self) -> None:
            # The TCP connection is open (to the pinned address): from here on the host is the configured name,
            # which PyMySQL's TLS handshake sends as SNI and verifies the certificate against.
            self.host = self.server_name
            super()._request_authentication()

    return PinnedConnection


class Session:
    """A PyMySQL connection seen as the ledger calls SQL connections: ``execute(sql, params)`` -> cursor."""

    def __init__(self, conn) -> None:
        self.conn = conn

    def execute(self, statement: str, params: list[Any] | tuple | None = None):
        cursor = self.conn.cursor()
        cursor.execute(statement, params if params else None)
        return cursor


class MysqlLedger(Ledger):
    """The load ledger in MySQL's words: VARCHAR keys (no TEXT in a key), ``rows`` quoted (reserved)."""

    def ensure(self, conn: Session) -> None:
        conn.execute(
            f"CREATE TABLE IF NOT EXISTS {self.table} (dag_id VARCHAR(250) NOT NULL, run_id VARCHAR(250) NOT NULL, "
            'task_id VARCHAR(250) NOT NULL, target VARCHAR(1024) NOT NULL, "rows" BIGINT NOT NULL, '
            f"loaded_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6), {ledger.STAGED_COLUMNS} LONGTEXT, "
            "PRIMARY KEY (dag_id, run_id, task_id)) DEFAULT CHARSET = utf8mb4"
        )

    def already_loaded(self, conn: Session, identity: tuple[str, str, str]) -> bool:
        row = conn.execute(
            f"SELECT 1 FROM {self.table} WHERE dag_id = %s AND run_id = %s AND task_id = %s", list(identity)
        ).fetchone()
        return row is not None

    def record(self, conn, identity, target, rows, columns=None) -> None:
        conn.execute(
            f'INSERT INTO {self.table} (dag_id, run_id, task_id, target, "rows", {ledger.STAGED_COLUMNS}) '
            'VALUES (%s, %s, %s, %s, %s, %s) ON DUPLICATE KEY UPDATE "rows" = VALUES("rows"), '
            f"{ledger.STAGED_COLUMNS} = VALUES({ledger.STAGED_COLUMNS}), loaded_at = CURRENT_TIMESTAMP(6)",
            [*identity, target, rows, json.dumps(columns) if columns is not None else None],
        )


def _errno(exc: BaseException) -> int:
    args = getattr(exc, "args", ())
    return args[0] if args and isinstance(args[0], int) else 0


LOCAL_FILE_REFUSED = "the server asked for a local file (LOAD DATA LOCAL INFILE), which connectors never send"


def asked_for_a_file(exc: RuntimeError) -> bool:
    """Whether PyMySQL refused a server's LOAD DATA LOCAL request (it raises a bare RuntimeError for it)."""
    return "LOAD_LOCAL" in str(exc)


# Server error numbers, by what the task does about them.
ACCESS_DENIED = {1044, 1045, 1049, 1227, 1698}  # wrong login, unknown database: permanent
READ_ONLY = {1792, 1290}  # a write in a READ ONLY transaction (or a read-only server)
TIMED_OUT = {1969, 3024, 1205, 1213}  # max_statement_time, max_execution_time, lock wait, deadlock
LOST = {2006, 2013, 2003, 2055}  # gone away, lost during query, cannot connect, lost (SSL)


# ---------------------------------------------------------------- the adapter


class MysqlAdapter(Adapter):
    connector_type = "database"
    config_model = MysqlConnectorConfig
    reads_incrementally = True
    config: MysqlConnectorConfig

    @classmethod
    def refusals(cls, config: MysqlConnectorConfig, allowance: Allowance) -> list[tuple[str, str]]:
        reason = refusal_at_save(allowance, config.host or "", config.port, key="host")
        return [("config.host", reason)] if reason else []

    def connection_params(self) -> dict[str, Any]:
        """PyMySQL arguments: the pinned address, the credential, and nothing that reads or runs more."""
        config = self.config
        refused = sorted(set(config.options) - set(OPTION_TYPES))  # a config saved before the allow-list
        if refused:
            raise self.fail(f"connection option(s) {', '.join(refused)} are not allowed")
        user = self.secret.get("user")
        if not user:
            raise self.fail("needs a credential with a 'user'")
        return {
            "charset": "utf8mb4",
            "connect_timeout": CONNECT_TIMEOUT_SECONDS,
            **config.options,
            "host": self.pin(config.host or "", config.port, "host"),
            "server_name": config.host,
            "port": config.port,
            "user": user,
            "password": self.secret.get("password") or "",
            "database": config.database,
            # Explicitly: no local file is ever sent, no option file read, no SQL run at connect, one statement
            # per call (CLIENT.MULTI_STATEMENTS is never set), values as text (converted by Arrow).
            "local_infile": False,
            "client_flag": 0,
            "read_default_file": None,
            "read_default_group": None,
            "init_command": None,
            "unix_socket": None,
            "bind_address": None,
            "autocommit": False,
        }

    def connect(self, *, streaming: bool = False):
        import pymysql
        import pymysql.cursors

        params = self.connection_params()
        if streaming:
            # PyMySQL's encoders (Python -> SQL literals) but no decoders: values arrive as text, converted
            # column by column by Arrow (PyMySQL's per-value converters are the slow part of a read).
            params["conv"] = {
                k: v for k, v in pymysql.converters.conversions.items() if not isinstance(k, int)
            }
            params["cursorclass"] = pymysql.cursors.SSCursor
        try:
            conn = _pinned_connection_class()(**params)
            try:
                conn.mariadb = "mariadb" in (conn.get_server_info() or "").lower()
                with conn.cursor(pymysql.cursors.Cursor) as cursor:
                    cursor.execute("SET time_zone = '+00:00'")  # TIMESTAMP values in UTC, both ways
            except BaseException:
                conn._force_close()  # no QUIT to a server that broke the protocol: the socket just closes
                raise
        except pymysql.err.MySQLError as exc:
            permanent = _errno(exc) in ACCESS_DENIED
            raise self.fail(f"cannot connect: {_message(exc)}", retryable=not permanent) from None
        except RuntimeError as exc:
            if not asked_for_a_file(exc):
                raise
            raise self.fail(f"cannot connect: {LOCAL_FILE_REFUSED}") from None
        return conn

    def connect_read_only(self, *, streaming: bool = False):
        """A connection for tenant-written queries: every transaction READ ONLY, every statement time-bounded.

        The server enforces both: the session's transactions are read-only (``SET SESSION TRANSACTION READ
        ONLY``, and each read also starts with ``START TRANSACTION READ ONLY``), and the session's statement
        limit (MariaDB ``max_statement_time`` in seconds, MySQL ``max_execution_time`` in milliseconds) stops a
        query that runs longer than ETL_SOURCE_STATEMENT_TIMEOUT.
        """
        import pymysql.cursors

        seconds = float(conf.value("ETL_SOURCE_STATEMENT_TIMEOUT"))
        conn = self.connect(streaming=streaming)
        with conn.cursor(pymysql.cursors.Cursor) as cursor:
            cursor.execute("SET SESSION TRANSACTION READ ONLY")
            if conn.mariadb:
                cursor.execute("SET SESSION max_statement_time = %s", [seconds])
            else:
                cursor.execute("SET SESSION max_execution_time = %s", [int(seconds * 1000)])
            cursor.execute("START TRANSACTION READ ONLY")
        conn.statement_seconds = seconds
        return conn

    def check(self) -> str:
        conn = self.connect_read_only()
        try:
            server = "MariaDB" if conn.mariadb else "MySQL"
            with conn.cursor() as cursor:
                cursor.execute("SELECT VERSION()")
                version = cursor.fetchone()[0].split("-")[0]
        finally:
            conn.close()
        return f"connected to {server} {version}, database {self.config.database!r}"

    def read(self, request: dict[str, Any], batch_size: int) -> Iterator[pa.RecordBatch]:
        import pymysql

        query, params = self._query(request)
        conn = self.connect_read_only(streaming=True)
        try:
            if conn.mariadb:  # also bound per statement: a session variable a function could change
                query = f"SET STATEMENT max_statement_time = {conn.statement_seconds:.3f} FOR {query}"
            cursor = conn.cursor()
            cursor.execute(query, params)  # streamed: the column descriptions are read, no row yet
            fields = cursor._result.fields  # PyMySQL's field descriptors: type, flags, charset
            schema = result_schema(fields)
            encoding = "utf8" if conn.encoding in ("utf8", "utf8mb4", "utf-8") else conn.encoding
            empty = True
            for payloads in row_packets(conn, batch_size):
                empty = False
                columns = split_rows(payloads, len(fields))
                yield pa.RecordBatch.from_arrays(
                    [
                        column_array(values, f.type, field, encoding)
                        for values, f, field in zip(columns, schema, fields, strict=True)
                    ],
                    schema=schema,
                )
            if empty:  # no rows: the result's columns and types still say what the dataset is
                yield empty_batch(schema)
        except pymysql.err.MySQLError as exc:
            raise self._read_failure(exc) from None
        except RuntimeError as exc:
            if not asked_for_a_file(exc):
                raise
            raise self.fail(f"query refused: {LOCAL_FILE_REFUSED}") from None
        except pa.ArrowInvalid as exc:
            raise self.fail(f"a value does not convert: {first_line(exc)}") from None
        finally:
            conn.close()  # also when the consumer stops early: closing does not drain a streamed result

    def _read_failure(self, exc: BaseException):
        code, text = _errno(exc), _message(exc)
        if code in READ_ONLY:
            return self.fail(f"source queries are read-only: {text}")
        if code in TIMED_OUT:
            return self.fail(f"timed out: {text}", retryable=True)
        if code in LOST:
            return self.fail(f"connection lost: {text}", retryable=True)
        if code == 1146:
            return self.fail(f"missing table: {text}")
        if code in (1064, 1054, 1149):
            return self.fail(f"bad query: {text}")
        return self.fail(f"query refused: {text}")

    def _query(self, request: dict[str, Any]) -> tuple[str, list[Any] | None]:
        watermark = request.get("watermark")
        if request.get("query"):
            # Always a derived table: only a SELECT (or WITH … SELECT) stands there; the newline ends a trailing
            # comment. Its own % are not placeholders when a watermark adds one.
            text = request["query"].strip().rstrip(";")
            refused = query_refusal(text)
            if refused:
                raise self.fail(f"query refused: {refused}")
            query = f"SELECT * FROM ({text}\n) AS etl_source"
            if watermark is not None:
                query = query.replace("%", "%%")
        elif request.get("table"):
            query = "SELECT * FROM " + ".".join(backtick(p) for p in split_table_name(request["table"]))
        else:
            raise self.fail("the extract needs 'query' or 'table'")
        if watermark is None:
            return query, None
        return f"{query} WHERE {backtick(watermark['column'])} > %s", [mark_value(watermark["value"])]

    def sample(self, limit: int = 10) -> pa.Table:
        conn = self.connect_read_only()
        try:
            with conn.cursor() as cursor:
                cursor.execute(
                    "SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE() "
                    "AND table_name <> %s ORDER BY table_name LIMIT 1",
                    [ledger.LEDGER],
                )
                row = cursor.fetchone()
        finally:
            conn.close()
        if row is None:
            raise self.fail("the database has no table to preview")
        query = f"SELECT * FROM {backtick(row[0])} LIMIT {int(limit)}"
        batches = list(self.read({"query": query}, limit))
        return pa.Table.from_batches(batches[:1]).slice(0, limit) if batches else pa.table({})

    def load(self, request: LoadRequest, dataset: StagedReader) -> Written:
        """Insert a staged dataset into ``request.table`` in one transaction that also records the ledger row."""
        import pymysql

        if not request.table:
            raise StepFailure("a database load needs 'table'")
        parts = split_table_name(request.table)
        book = MysqlLedger(MYSQL, parts[:-1])
        conn = self.connect()
        session = Session(conn)
        try:
            # The platform's own SQL only (no tenant SQL runs on a load): ANSI quotes for the ledger's
            # identifiers, strict so a value that does not fit fails instead of being cut.
            # NO_BACKSLASH_ESCAPES: a quote doubled is the whole escaping of text (sql_literals).
            session.execute(
                "SET SESSION sql_mode = CONCAT(@@sql_mode, ',ANSI_QUOTES,STRICT_ALL_TABLES,NO_BACKSLASH_ESCAPES')"
            )
            session.execute(f"SET SESSION innodb_lock_wait_timeout = {LOCK_WAIT_SECONDS}")
            book.ensure(session)
            lock = "etl:" + hashlib.sha1("|".join(request.identity).encode()).hexdigest()
            # One try at a time per (run, task), whatever the mode.
            if not session.execute("SELECT GET_LOCK(%s, %s)", [lock, LOCK_WAIT_SECONDS]).fetchone()[0]:
                raise StepFailure(
                    f"another try of this load holds its lock on {request.table!r}", retryable=True
                )
            try:
                rows = guarded_load(
                    session,
                    book,
                    request,
                    lambda: self._prepare(session, request, parts, dataset, book),
                    lambda: write_rows(session, request, parts, dataset),
                )
                if rows is None:
                    conn.rollback()
                    return self._written(request, 0, skipped=ledger.SKIPPED)
                conn.commit()
            except BaseException:
                conn.rollback()
                raise
            finally:
                session.execute("SELECT RELEASE_LOCK(%s)", [lock])
            ledger.fault("after_commit")
        except pymysql.err.MySQLError as exc:
            code, text = _errno(exc), _message(exc)
            if code == 1146:
                raise StepFailure(f"missing table: {text}") from None
            if code in TIMED_OUT or code in LOST:
                raise StepFailure(
                    f"load into {request.table!r} interrupted: {text}", retryable=True
                ) from None
            raise StepFailure(f"load into {request.table!r} refused: {text}") from None
        except RuntimeError as exc:
            if not asked_for_a_file(exc):
                raise
            raise StepFailure(f"load into {request.table!r} refused: {LOCAL_FILE_REFUSED}") from None
        finally:
            conn.close()
        return self._written(request, rows)

    def _prepare(self, session: Session, request: LoadRequest, parts, dataset, book) -> TargetPlan:
        existing = list(table_types(session, parts))
        if not existing and request.create_table and request.key:
            # Created here (not by prepare_target) so that text key columns are VARCHAR, which MySQL can index.
            schema = dataset.schema
            missing = [k for k in request.key if k not in schema.names]
            if missing:
                raise StepFailure(f"key column(s) {missing} are not in the staged dataset")
            definitions = [
                f"{quote(f.name)} {KEY_TEXT if f.name in request.key and mysql_type(f.type) == 'LONGTEXT' else mysql_type(f.type)}"
                for f in schema
            ]
            definitions.append(f"PRIMARY KEY ({', '.join(quote(k) for k in request.key)})")
            session.execute(f"CREATE TABLE {ledger.qualified(parts)} ({', '.join(definitions)})")
            return TargetPlan([{"name": f.name, "type": str(f.type)} for f in schema])
        return prepare_target(session, MYSQL, request, parts, existing, dataset, book)

    def _written(self, request: LoadRequest, rows: int, skipped: str | None = None) -> Written:
        uri = f"mysql://{self.config.host}/{self.config.database}/{request.table}"
        return Written(str(request.table), uri, rows, skipped)


# What a READ ONLY transaction does not stop in a MySQL query: reading the database server's files, running
# commands through the usual UDFs, writing a file. Matched as words anywhere in the text (also inside
# strings and comments: MySQL runs /*! … */ comments), so no quoting hides one; a string that merely
# mentions one is refused too, which the message explains.
REFUSED_IN_QUERIES = {
    re.compile(r"\bload_file\b", re.IGNORECASE): "LOAD_FILE() reads files of the database server",
    re.compile(r"\bsys_(exec|eval)\b", re.IGNORECASE): "sys_exec()/sys_eval() run commands on the server",
    re.compile(r"\binto\s+(outfile|dumpfile)\b", re.IGNORECASE): "INTO OUTFILE/DUMPFILE writes a server file",
}


def query_refusal(text: str) -> str | None:
    """Why a tenant's MySQL query may not run, or None (the read-only transaction stays the first layer)."""
    for pattern, reason in REFUSED_IN_QUERIES.items():
        if pattern.search(text):
            return f"{reason} (a source query may only read tables)"
    return None


def backtick(identifier: str) -> str:
    """An identifier in MySQL's own quotes (read connections keep the server's sql_mode)."""
    return "`" + identifier.replace("`", "``") + "`"


def mark_value(value: Any) -> Any:
    """A watermark as MySQL compares it: an ISO instant becomes its UTC wall-clock time (the session's zone)."""
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return value
        if moment.tzinfo is not None:
            moment = moment.astimezone(UTC).replace(tzinfo=None)
        return moment
    return value


def _message(exc: BaseException) -> str:
    args = getattr(exc, "args", ())
    if len(args) >= 2:
        return f"({args[0]}) {first_line(args[1])}"
    return first_line(exc)


# ---------------------------------------------------------------- tables and the load modes


def _schema_and_table(parts: tuple[str, ...]) -> tuple[str | None, str]:
    return (parts[0], parts[1]) if len(parts) == 2 else (None, parts[0])


def table_types(conn: Session, parts: tuple[str, ...]) -> dict[str, str]:
    """The table's columns and their types in drift.py's words, in order (empty when it does not exist)."""
    schema, table = _schema_and_table(parts)
    rows = conn.execute(
        "SELECT column_name, data_type, column_type FROM information_schema.columns "
        "WHERE table_schema = COALESCE(%s, DATABASE()) AND table_name = %s ORDER BY ordinal_position",
        [schema, table],
    ).fetchall()
    return {name: family_name(data_type, column_type) for name, data_type, column_type in rows}


def unique_keys(conn: Session, parts: tuple[str, ...]) -> list[set[str]]:
    """The column sets of the table's primary key and unique indexes."""
    schema, table = _schema_and_table(parts)
    rows = conn.execute(
        "SELECT index_name, column_name FROM information_schema.statistics WHERE non_unique = 0 "
        "AND table_schema = COALESCE(%s, DATABASE()) AND table_name = %s",
        [schema, table],
    ).fetchall()
    keys: dict[str, set[str]] = {}
    for index, column in rows:
        keys.setdefault(index, set()).add(column)
    return list(keys.values())


def insert_all(conn: Session, table: str, columns: list[str], dataset, suffix: str = "") -> int:
    """Multi-row INSERTs of the staged rows, their values written as literals by Arrow (no per-value Python)."""
    from django_etl.dataplane.postgres import encoded_chunks  # the shared producer thread of COPY loads

    prefix = f"INSERT INTO {table} ({', '.join(quote(c) for c in columns)}) VALUES "
    rows = 0

    def counted():
        nonlocal rows
        for batch in dataset.to_batches(batch_size=INSERT_BATCH_ROWS, columns=columns):
            if batch.num_rows:
                rows += batch.num_rows
                yield batch

    # The next batch's statements are built on a helper thread while the server runs this batch's.
    for statements in encoded_chunks(counted(), lambda batch: list(values_statements(batch, prefix, suffix))):
        for statement in statements:
            conn.execute(statement)
    return rows


def write_rows(conn: Session, request: LoadRequest, parts: tuple[str, ...], dataset) -> int:
    table = ledger.qualified(parts)
    columns = dataset.schema.names
    if request.mode == "append":
        return insert_all(conn, table, columns, dataset)
    if request.mode == "replace":
        conn.execute(f"DELETE FROM {table}")
        return insert_all(conn, table, columns, dataset)
    if request.mode == "upsert":
        key = list(request.key)
        if not any(set(key) == index for index in unique_keys(conn, parts)):
            raise StepFailure(
                f"upsert into {request.table!r} needs a primary key or unique index on exactly {key} "
                "(ON DUPLICATE KEY UPDATE finds rows by one)"
            )
        nulls = sum(
            batch.column(name).null_count for batch in dataset.to_batches(columns=key) for name in key
        )
        if nulls:
            raise StepFailure(f"{nulls} staged value(s) are NULL in the upsert key {key}")
        others = [c for c in columns if c not in key] or key[:1]
        # The last staged row of a key wins (rows are applied in order).
        suffix = " ON DUPLICATE KEY UPDATE " + ", ".join(f"{quote(c)} = VALUES({quote(c)})" for c in others)
        return insert_all(conn, table, columns, dataset, suffix)
    # replace_interval: staged first into a temporary table (no implicit commit), so the interval can be checked.
    start, end = (moment.astimezone(UTC).replace(tzinfo=None) for moment in request.interval())
    temp = quote("etl_incoming")
    column = quote(request.interval_column)
    names = ", ".join(quote(c) for c in columns)
    conn.execute(f"DROP TEMPORARY TABLE IF EXISTS {temp}")
    conn.execute(f"CREATE TEMPORARY TABLE {temp} SELECT {names} FROM {table} WHERE 1 = 0")
    rows = insert_all(conn, temp, columns, dataset)
    outside = conn.execute(
        f"SELECT count(*) FROM {temp} WHERE {column} IS NULL OR {column} < %s OR {column} >= %s", [start, end]
    ).fetchone()[0]
    if outside:
        raise StepFailure(
            f"{outside} staged row(s) have {request.interval_column!r} outside the run's interval "
            f"[{request.data_interval_start.isoformat()}, {request.data_interval_end.isoformat()})"
        )
    conn.execute(f"DELETE FROM {table} WHERE {column} >= %s AND {column} < %s", [start, end])
    conn.execute(f"INSERT INTO {table} ({names}) SELECT {names} FROM {temp}")
    conn.execute(f"DROP TEMPORARY TABLE {temp}")
    return rows
