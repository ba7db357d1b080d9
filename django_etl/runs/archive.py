"""One month of run history as files: a gzip'd COPY per table, and a manifest with row counts and checksums.

A month's archive (docs/partitioning.md) is a folder ``<ETL_PARTITION_ARCHIVE_URL>/task_runs_yYYYYmMM/``
holding ``<table>.copy.gz`` for each table of :data:`TABLES` (PostgreSQL's COPY text format, gzip'd while it
streams: memory stays flat however large the month) and ``manifest.json``, written last: a folder without a
manifest is an unfinished archive and is written again. The location is a local folder or ``s3://bucket/prefix``
(staging's S3 endpoint and keys). :func:`write` reads the month in one REPEATABLE READ snapshot so the files agree
with each other; :func:`load` checks every file's checksum and row count inside the caller's transaction, so a
damaged archive changes nothing.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass

import pyarrow.fs as pafs

from django_etl.errors import EtlError
from django_etl.runs import partitioning

FORMAT = 1
MANIFEST = "manifest.json"
CHUNK = 1 << 20
RUNS_OF_MONTH = "etl_archive_runs"
ALERTS_OF_MONTH = "etl_archive_alerts"
EDGES_OF_MONTH = "etl_archive_edges"


class ArchiveError(EtlError):
    """An archive is missing, damaged or does not fit the database; the message says which and what to do."""


@dataclass(frozen=True)
class Table:
    """One table of a month's archive: which of its rows belong to the month (``{p}``: the partition)."""

    name: str
    where: str


# In the order a restore loads them (each references only those before it).
TABLES = [
    Table("pipeline_runs", f"id IN (SELECT id FROM {RUNS_OF_MONTH})"),
    Table("task_runs", ""),  # the partition itself
    Table("alerts", f"id IN (SELECT id FROM {ALERTS_OF_MONTH})"),
    Table("alert_deliveries", f"alert_id IN (SELECT id FROM {ALERTS_OF_MONTH})"),
    Table("data_lineage", f"id IN (SELECT id FROM {EDGES_OF_MONTH})"),
]
# Deleted from the live tables once the partition is detached: children first.
PURGE_ORDER = ["data_lineage", "alert_deliveries", "alerts", "pipeline_runs"]


def select_month(cursor, partition: str, month: dt.date) -> None:
    """Temporary tables of the month's pipeline runs, alerts and lineage edges (dropped at commit).

    The month's pipeline runs are those started in it whose task runs all live in this partition (a run whose
    tasks sit in another month too stays). Its alerts: those of these runs or of the partition's task runs; its
    edges: those with an end in the partition. Each is a UNION of joins, never ``x IN (…) OR y IN (…)``: an OR
    of subqueries is not planned as a join, and once the month's ids outgrow work_mem PostgreSQL would scan the
    partition again for every row (bench/dashboard.py: minutes for 70,000 alerts).
    """
    lower, upper = partitioning.month_bounds(month)
    for name in (RUNS_OF_MONTH, ALERTS_OF_MONTH, EDGES_OF_MONTH):
        cursor.execute(f"DROP TABLE IF EXISTS {name}")
    cursor.execute(
        f"""
        CREATE TEMPORARY TABLE {RUNS_OF_MONTH} ON COMMIT DROP AS
        SELECT p.id FROM pipeline_runs p
        WHERE p.started_at >= %s AND p.started_at < %s
          AND NOT EXISTS (
            SELECT 1 FROM task_runs t WHERE t.pipeline_run_id = p.id AND t.tableoid <> %s::regclass
          )
        """,
        [lower, upper, partition],
    )
    cursor.execute(f"ANALYZE {RUNS_OF_MONTH}")
    cursor.execute(
        f"""
        CREATE TEMPORARY TABLE {ALERTS_OF_MONTH} ON COMMIT DROP AS
        SELECT a.id FROM alerts a JOIN {RUNS_OF_MONTH} r ON r.id = a.pipeline_run_id
        UNION
        SELECT a.id FROM alerts a JOIN "{partition}" t ON t.id = a.task_run_id
        """
    )
    cursor.execute(
        f"""
        CREATE TEMPORARY TABLE {EDGES_OF_MONTH} ON COMMIT DROP AS
        SELECT l.id FROM data_lineage l JOIN "{partition}" t ON t.id = l.target_task_id
        UNION
        SELECT l.id FROM data_lineage l JOIN "{partition}" t ON t.id = l.source_task_id
        """
    )
    cursor.execute(f"ANALYZE {ALERTS_OF_MONTH}")
    cursor.execute(f"ANALYZE {EDGES_OF_MONTH}")


def rows_sql(table: Table, partition: str, columns: list[str]) -> str:
    listed = ", ".join(f'"{c}"' for c in columns)
    if table.name == "task_runs":
        return f'SELECT {listed} FROM "{partition}"'
    return f'SELECT {listed} FROM "{table.name}" WHERE {table.where.format(p=partition)}'


def count_rows(cursor, partition: str) -> dict[str, int]:
    """How many rows of each table belong to the month now (after :func:`select_month`)."""
    counts = {}
    for table in TABLES:
        sql = rows_sql(table, partition, ["id"])
        cursor.execute(f"SELECT count(*) FROM ({sql}) AS month_rows")
        counts[table.name] = cursor.fetchone()[0]
    return counts


def columns_of(cursor, table: str) -> list[str]:
    cursor.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped "
        "ORDER BY attnum",
        [table],
    )
    return [row[0] for row in cursor.fetchall()]


# ------------------------------------------------------------------ storage
def filesystem(location: str) -> tuple[pafs.FileSystem, str]:
    """The filesystem and base path of a location: a folder, or s3://bucket/prefix with staging's keys."""
    if location.startswith("s3://"):
        from django_etl.dataplane.staging import _s3_filesystem

        return _s3_filesystem(allow_bucket_creation=True), location.removeprefix("s3://").rstrip("/")
    path = location.removeprefix("file://")
    return pafs.LocalFileSystem(), str(pafs.LocalFileSystem().normalize_path(path)).rstrip("/")


def folder_of(location: str, partition: str) -> str:
    return f"{location.rstrip('/')}/{partition}"


class _Hashing:
    """A write-only stream that hashes and counts what passes through it."""

    def __init__(self, sink) -> None:
        self.sink, self.sha256, self.size = sink, hashlib.sha256(), 0

    def write(self, data) -> int:
        self.sha256.update(data)
        self.size += len(data)
        self.sink.write(data)
        return len(data)

    def flush(self) -> None:
        pass


def read_manifest(location: str, partition: str) -> dict | None:
    fs, base = filesystem(location)
    path = f"{base}/{partition}/{MANIFEST}"
    if fs.get_file_info(path).type == pafs.FileType.NotFound:
        return None
    with fs.open_input_stream(path) as stream:
        return json.loads(stream.read().decode())


def write(
    connection,
    partition: str,
    month: dt.date,
    location: str,
    *,
    progress: Callable[[str], None] | None = None,
) -> dict:
    """Write the month's archive (every table, then the manifest) and return the manifest.

    Runs in its own REPEATABLE READ transaction (so must be called outside one): the files are one snapshot.
    Writing again over an unfinished or stale archive replaces it.
    """
    if connection.in_atomic_block:
        raise ArchiveError("archive.write must run outside a transaction (it opens its own snapshot)")
    fs, base = filesystem(location)
    folder = f"{base}/{partition}"
    local = isinstance(fs, pafs.LocalFileSystem)
    if local:  # object stores have no folders (pyarrow would add marker objects)
        # Run history (logs, row samples, alert text): readable by the platform's user only, as backups are.
        os.makedirs(folder, mode=0o700, exist_ok=True)
        os.chmod(folder, 0o700)
    manifest_path = f"{folder}/{MANIFEST}"
    if fs.get_file_info(manifest_path).type != pafs.FileType.NotFound:
        fs.delete_file(manifest_path)  # the folder is unfinished until the new manifest is written
    connection.ensure_connection()
    raw = connection.connection  # psycopg's own connection: COPY TO STDOUT streams through it
    tables: dict[str, dict] = {}
    with raw.transaction(), raw.cursor() as cursor:
        # One snapshot for every file (not READ ONLY: the month's selection is two temporary tables).
        cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        select_month(cursor, partition, month)
        for table in TABLES:
            columns = columns_of(cursor, partition if table.name == "task_runs" else table.name)
            tables[table.name] = _copy_out(cursor, table, partition, columns, fs, folder)
            if progress:
                progress(f"{partition}: {table.name} {tables[table.name]['rows']:,} row(s) archived")
    lower, upper = partitioning.month_bounds(month)
    manifest = {
        "format": FORMAT,
        "partition": partition,
        "month": month.strftime("%Y-%m"),
        "range": [lower, upper],
        "written_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "tables": tables,
    }
    with fs.open_output_stream(manifest_path) as stream:
        stream.write(json.dumps(manifest, indent=2, sort_keys=True).encode())
    if local:
        for name in [MANIFEST, *(entry["file"] for entry in tables.values())]:
            os.chmod(f"{folder}/{name}", 0o600)
    return manifest


def _copy_out(cursor, table: Table, partition: str, columns: list[str], fs, folder: str) -> dict:
    name = f"{table.name}.copy.gz"
    rows = 0
    with fs.open_output_stream(f"{folder}/{name}", compression=None) as sink:
        hashing = _Hashing(sink)
        copy_out = f"COPY ({rows_sql(table, partition, columns)}) TO STDOUT"
        with (
            gzip.GzipFile(fileobj=hashing, mode="wb", compresslevel=6, mtime=0) as packed,
            cursor.copy(copy_out) as copy,
        ):
            for data in copy:
                packed.write(data)
                rows += bytes(data).count(b"\n")  # COPY text: one line per row, newlines escaped
    return {
        "file": name,
        "columns": columns,
        "rows": rows,
        "sha256": hashing.sha256.hexdigest(),
        "bytes": hashing.size,
    }


def load(connection, manifest: dict, location: str, tables: list[str], *, progress=None) -> dict[str, int]:
    """COPY the archive's ``tables`` back (inside the caller's transaction); rows loaded per table.

    Each file is checked against the manifest (checksum, then row count) before the transaction may commit.
    Rows go through a temporary table so that a reference the archive has and the database lost since (the
    user who triggered a run, an alert rule) is emptied instead of failing the restore.
    """
    if not connection.in_atomic_block:
        raise ArchiveError("archive.load must run inside the restore's transaction")
    fs, base = filesystem(location)
    folder = f"{base}/{manifest['partition']}"
    loaded = {}
    raw_cursor = connection.connection.cursor()
    try:
        for table in [t for t in TABLES if t.name in tables]:
            entry = manifest["tables"].get(table.name)
            if entry is None:
                raise ArchiveError(
                    f"{folder}/{MANIFEST} does not list {table.name}; the archive is incomplete"
                )
            loaded[table.name] = _copy_in(raw_cursor, table.name, entry, fs, folder)
            if progress:
                progress(f"{manifest['partition']}: {table.name} {loaded[table.name]:,} row(s) restored")
    finally:
        raw_cursor.close()
    return loaded


# Emptied when what they point at no longer exists (nullable references the month does not own).
NULLED_WHEN_GONE = {
    "pipeline_runs": {"triggered_by_id": "auth_user"},
    "alert_deliveries": {"rule_id": "alert_rules"},
}


def _copy_in(cursor, table: str, entry: dict, fs, folder: str) -> int:
    path = f"{folder}/{entry['file']}"
    if fs.get_file_info(path).type == pafs.FileType.NotFound:
        raise ArchiveError(f"{path} is missing: the archive is incomplete; nothing was restored")
    live = set(columns_of(cursor, table))
    unknown = [c for c in entry["columns"] if c not in live]
    if unknown:
        raise ArchiveError(
            f"{path}: columns {', '.join(unknown)} no longer exist in {table}; restore into a database at the "
            "archive's migration state (nothing was restored)"
        )
    staged = f"etl_restore_{table}"
    listed = ", ".join(f'"{c}"' for c in entry["columns"])
    cursor.execute(f"DROP TABLE IF EXISTS {staged}")
    cursor.execute(f'CREATE TEMPORARY TABLE {staged} (LIKE "{table}") ON COMMIT DROP')
    digest = hashlib.sha256()
    with fs.open_input_stream(path, compression=None) as stream:
        reader = _HashingReader(stream, digest)
        copy_in = f"COPY {staged} ({listed}) FROM STDIN"
        with gzip.GzipFile(fileobj=reader, mode="rb") as unpacked, cursor.copy(copy_in) as copy:
            while data := unpacked.read(CHUNK):
                copy.write(data)
    if digest.hexdigest() != entry["sha256"]:
        raise ArchiveError(
            f"{path}: checksum differs from the manifest; the file is damaged (nothing restored)"
        )
    picked = []
    for column in entry["columns"]:
        target = NULLED_WHEN_GONE.get(table, {}).get(column)
        picked.append(
            f'(SELECT g.id FROM "{target}" g WHERE g.id = s."{column}")' if target else f's."{column}"'
        )
    cursor.execute(f'INSERT INTO "{table}" ({listed}) SELECT {", ".join(picked)} FROM {staged} s')
    if cursor.rowcount != entry["rows"]:
        raise ArchiveError(
            f"{path}: {cursor.rowcount} row(s) read, the manifest says {entry['rows']}; nothing was restored"
        )
    return cursor.rowcount


class _HashingReader:
    def __init__(self, stream, digest) -> None:
        self.stream, self.digest = stream, digest

    def read(self, size: int = -1) -> bytes:
        data = self.stream.read(size) if size and size > 0 else self.stream.read()
        self.digest.update(data)
        return data

    def readable(self) -> bool:
        return True
