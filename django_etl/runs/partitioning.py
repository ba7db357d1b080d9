"""Monthly range partitions of task_runs on PostgreSQL: the table's creation and its partition upkeep.

See docs/partitioning.md. On other databases task_runs is a plain table and these functions do nothing.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.db import connection as default_connection
from django.db import transaction

TABLE = "task_runs"
KEY = "run_started_at"
DEFAULT_PARTITION = f"{TABLE}_default"


def is_postgresql(connection) -> bool:
    return connection.vendor == "postgresql"


def month_start(moment: dt.date | dt.datetime) -> dt.date:
    return dt.date(moment.year, moment.month, 1)


def add_months(month: dt.date, count: int) -> dt.date:
    index = month.year * 12 + month.month - 1 + count
    return dt.date(index // 12, index % 12 + 1, 1)


def partition_name(month: dt.date) -> str:
    """task_runs_y2025m01, the seed's naming."""
    return f"{TABLE}_y{month.year:04d}m{month.month:02d}"


def create_partitioned_table(schema_editor, model) -> None:
    """CREATE TABLE ... PARTITION BY RANGE (run_started_at), with the model's columns, indexes and constraints.

    Django would make ``id`` alone the primary key; PostgreSQL requires the partition key in every primary
    key and unique constraint of a partitioned table, so the key becomes (id, run_started_at).
    """
    qn = schema_editor.quote_name
    sql, params = schema_editor.table_sql(model)
    id_column = f"{qn('id')} uuid NOT NULL PRIMARY KEY"
    if id_column not in sql:
        raise RuntimeError(f"unexpected DDL for {TABLE}: {sql}")
    sql = sql.replace(id_column, f"{qn('id')} uuid NOT NULL", 1)
    sql = sql[: sql.rindex(")")] + f", PRIMARY KEY ({qn('id')}, {qn(KEY)})) PARTITION BY RANGE ({qn(KEY)})"
    schema_editor.execute(sql, params or None)
    schema_editor.deferred_sql.extend(schema_editor._model_indexes_sql(model))
    schema_editor.execute(f"CREATE TABLE {qn(DEFAULT_PARTITION)} PARTITION OF {qn(TABLE)} DEFAULT")


@dataclass
class PartitionReport:
    created: list[str] = field(default_factory=list)
    existing: list[str] = field(default_factory=list)
    moved_rows: dict[str, int] = field(default_factory=dict)


def existing_partitions(connection) -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT child.relname FROM pg_inherits
            JOIN pg_class parent ON parent.oid = pg_inherits.inhparent
            JOIN pg_class child ON child.oid = pg_inherits.inhrelid
            WHERE parent.relname = %s
            """,
            [TABLE],
        )
        return {row[0] for row in cursor.fetchall()}


def months_in_default(connection) -> list[dt.date]:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT DISTINCT date_trunc('month', \"{KEY}\" AT TIME ZONE 'UTC')::date "
            f'FROM "{DEFAULT_PARTITION}" ORDER BY 1'
        )
        return [row[0] for row in cursor.fetchall()]


def month_bounds(month: dt.date) -> tuple[str, str]:
    """The partition bounds of ``month`` in UTC: [first day, first day of the next month)."""
    return f"{month.isoformat()} 00:00:00+00", f"{add_months(month, 1).isoformat()} 00:00:00+00"


def partition_month(name: str) -> dt.date | None:
    """task_runs_y2025m01 -> 2025-01-01; None for any other name (the default partition)."""
    match = re.fullmatch(rf"{TABLE}_y(\d{{4}})m(\d{{2}})", name)
    return dt.date(int(match[1]), int(match[2]), 1) if match else None


def create_month(connection, month: dt.date) -> int:
    """Create one month's partition, first moving that month's rows out of the default partition.

    PostgreSQL refuses to attach a partition whose rows sit in the default one, so the rows are moved into
    the new table before it is attached, all in one transaction. Returns how many rows moved.
    """
    name = partition_name(month)
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        cursor.execute(f'CREATE TABLE "{name}" (LIKE "{TABLE}" INCLUDING DEFAULTS INCLUDING CONSTRAINTS)')
        return attach_month(connection, name, month)


def attach_month(connection, name: str, month: dt.date) -> int:
    """Attach the plain table ``name`` as ``month``'s partition, after moving that month's default rows in.

    Also how a detached month comes back (runs/retention.py). Returns how many rows moved.
    """
    lower, upper = month_bounds(month)
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        # Block concurrent writers of the default partition while its rows move.
        cursor.execute(f'LOCK TABLE "{DEFAULT_PARTITION}" IN EXCLUSIVE MODE')
        cursor.execute(
            f'WITH moved AS (DELETE FROM "{DEFAULT_PARTITION}" WHERE "{KEY}" >= %s AND "{KEY}" < %s '
            f'RETURNING *) INSERT INTO "{name}" SELECT * FROM moved',
            [lower, upper],
        )
        moved = cursor.rowcount
        cursor.execute(
            f'ALTER TABLE "{TABLE}" ATTACH PARTITION "{name}" FOR VALUES FROM (%s) TO (%s)', [lower, upper]
        )
    return moved


def table_exists(connection, name: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [f'"{name}"'])
        return cursor.fetchone()[0]


def ensure_partitions(
    connection=default_connection,
    *,
    months_ahead: int = 3,
    today: dt.date | None = None,
    progress=None,
    archived: Iterable[dt.date] = (),
) -> PartitionReport:
    """Partitions for this month and ``months_ahead`` more, and for every month with rows in the default.

    Safe to run repeatedly: existing partitions are left alone. ``archived`` months (runs/retention.py) are
    not created again: rows of such a month in the default partition stay there for the check to report.
    """
    report = PartitionReport()
    if not is_postgresql(connection):
        return report
    this_month = month_start(today or dt.datetime.now(dt.UTC).date())
    wanted = {add_months(this_month, n) for n in range(months_ahead + 1)}
    wanted.update(months_in_default(connection))
    wanted.difference_update(archived)
    present = existing_partitions(connection)
    for month in sorted(wanted):
        name = partition_name(month)
        if name in present:
            report.existing.append(name)
            continue
        moved = create_month(connection, month)
        report.created.append(name)
        if moved:
            report.moved_rows[name] = moved
        if progress:
            progress(name, moved)
    return report


def default_partition_rows(connection=default_connection) -> int:
    if not is_postgresql(connection):
        return 0
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT count(*) FROM "{DEFAULT_PARTITION}"')
        return cursor.fetchone()[0]
