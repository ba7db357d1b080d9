"""Data migrations in chunks: one transaction per chunk, progress as it goes, resumable after an interruption.

One ``UPDATE`` over millions of rows holds its row locks (and the migration its table lock) until it ends, and
when it fails everything is lost. :func:`migrate_in_chunks` walks a queryset in primary-key order,
``chunk_size`` rows at a time; each chunk's changes and the cursor (the last key done) commit together in the
small table ``etl_migration_cursors``, so a run that stops (an error, a lock timeout, a killed process) starts
again after the last committed chunk, and no chunk is done twice. The cursor row is deleted when the walk
ends, and the table with it once no other walk has a cursor there, so a finished migration leaves no trace. Use it from ``ResumableRunPython`` (a ``RunPython`` that ``migrate`` retries after a lock timeout) in a
migration with ``atomic = False`` (see docs/migrations.md)::

    def backfill(apps, schema_editor):
        Alert = apps.get_model("monitoring", "Alert")
        alias = schema_editor.connection.alias

        def process(rows):
            for alert in rows:
                alert.metadata.setdefault("source", "airflow")
            Alert.objects.using(alias).bulk_update(rows, ["metadata"])

        migrate_in_chunks(Alert.objects.using(alias), process, name="monitoring.0002_backfill_source")

``process`` should leave a row it has already changed as it is (a run whose last chunk committed but whose
migration was not recorded walks again from the start, since the cursor is gone by then).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from django.db import connections, migrations, transaction

from django_etl.errors import ConfigurationError
from django_etl.migrations_kit import events

CURSOR_TABLE = "etl_migration_cursors"
logger = logging.getLogger(__name__)


class ResumableRunPython(migrations.RunPython):
    """A ``RunPython`` whose code walks with :func:`migrate_in_chunks`: running it again resumes, so the
    lock-timeout retry of ``migrate`` may run it again (``timeouts.retry_safe``)."""

    retry_safe = True


@dataclass
class ChunkReport:
    name: str
    done: int = 0  # rows processed by this walk, earlier interrupted runs included
    total: int = 0  # rows the walk covers (counted when this run started, plus those done before)
    chunks: int = 0  # chunks committed by this run
    resumed: bool = False


def migrate_in_chunks(
    queryset,
    process: Callable[[Sequence], object],
    *,
    name: str,
    chunk_size: int = 1000,
    progress: Callable[[ChunkReport], None] | None = None,
) -> ChunkReport:
    """Call ``process(rows)`` on the rows of ``queryset`` after the cursor ``name``, chunk by chunk, in pk order."""
    if chunk_size < 1:
        raise ConfigurationError(
            f"migrate_in_chunks({name!r}): chunk_size must be 1 or more, not {chunk_size}"
        )
    connection = connections[queryset.db]
    if connection.in_atomic_block:
        raise ConfigurationError(
            f"migrate_in_chunks({name!r}) runs inside a transaction, so its chunks cannot commit one by one: set "
            "`atomic = False` on the migration (docs/migrations.md)."
        )
    ensure_cursor_table(connection)
    position, done = read_cursor(connection, name)
    report = ChunkReport(
        name=name, done=done, total=done + after(queryset, position).count(), resumed=position is not None
    )
    if report.resumed:
        logger.info("%s: resuming after %s (%d rows done)", name, position, done)
    while True:
        with transaction.atomic(using=connection.alias):
            rows = list(after(queryset, position)[:chunk_size])
            if not rows:
                break
            process(rows)
            position = str(rows[-1].pk)
            report.done += len(rows)
            write_cursor(connection, name, position, report.done)
        report.chunks += 1
        report.total = max(report.total, report.done)
        events.chunk_done.send(
            sender=__name__, name=name, done=report.done, total=report.total, resumed=report.resumed
        )
        if progress:
            progress(report)
    delete_cursor(connection, name)
    drop_cursor_table_if_unused(connection)
    return report


def after(queryset, position: str | None):
    ordered = queryset.order_by("pk")
    if position is None:
        return ordered
    return ordered.filter(pk__gt=queryset.model._meta.pk.to_python(position))


def ensure_cursor_table(connection) -> None:
    qn = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TABLE IF NOT EXISTS {qn(CURSOR_TABLE)} ("
            f"{qn('name')} varchar(255) PRIMARY KEY, {qn('position')} text NOT NULL, "
            f"{qn('rows_done')} bigint NOT NULL, {qn('updated_at')} timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP)"
        )


def read_cursor(connection, name: str) -> tuple[str | None, int]:
    qn = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {qn('position')}, {qn('rows_done')} FROM {qn(CURSOR_TABLE)} WHERE name = %s", [name]
        )
        row = cursor.fetchone()
    return (row[0], row[1]) if row else (None, 0)


def write_cursor(connection, name: str, position: str, done: int) -> None:
    qn = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {qn(CURSOR_TABLE)} SET {qn('position')} = %s, {qn('rows_done')} = %s, "
            f"{qn('updated_at')} = CURRENT_TIMESTAMP WHERE name = %s",
            [position, done, name],
        )
        if cursor.rowcount == 0:
            cursor.execute(
                f"INSERT INTO {qn(CURSOR_TABLE)} (name, {qn('position')}, {qn('rows_done')}) VALUES (%s, %s, %s)",
                [name, position, done],
            )


def delete_cursor(connection, name: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {connection.ops.quote_name(CURSOR_TABLE)} WHERE name = %s", [name])


def drop_cursor_table_if_unused(connection) -> None:
    """The cursor table is bookkeeping of walks under way: once none is, it goes (unapplying leaves no table)."""
    table = connection.ops.quote_name(CURSOR_TABLE)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*) FROM {table}")
        if cursor.fetchone()[0] == 0:
            cursor.execute(f"DROP TABLE {table}")
