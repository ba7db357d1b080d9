"""Restoring a safe_migrate backup: the archive's rows replace the critical tables' rows, in one transaction.

It refuses when the database's migration state is not the archive's (the rows would not fit the tables):
migrate back to it first, the refusal names the commands. Rows elsewhere that point at rows the archive does
not have stop the restore (foreign keys are checked before it commits), so run history is never orphaned.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from django.db import DatabaseError, transaction
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.recorder import MigrationRecorder

from django_etl.errors import first_line
from django_etl.migrations_kit import catalog
from django_etl.migrations_kit.archive import (
    STATE_TABLE,
    BackupError,
    archive_tables,
    archived_state,
    copy_blocks,
    data_lines,
)
from django_etl.migrations_kit.timeouts import sqlstate

FOREIGN_KEY_VIOLATION = "23503"


@dataclass
class RestoreReport:
    path: Path
    rows: dict[str, int] = field(default_factory=dict)


def state_difference(connection, path: Path) -> tuple[set, set]:
    """(applied since the backup, unapplied since the backup)."""
    backup = archived_state(path)
    current = set(MigrationRecorder(connection).applied_migrations())
    return current - backup, backup - current


def commands_back(backup_state: set[tuple[str, str]], apps_changed: set[str], connection) -> list[str]:
    """``migrate <app> <name>`` commands that bring each changed app to the backup's state."""
    graph = MigrationLoader(connection, ignore_no_migrations=True).graph
    commands = []
    for app in sorted(apps_changed):
        applied = {node for node in backup_state if node[0] == app and node in graph.nodes}
        # The backup's last migration of the app: the one none of its other applied migrations comes after.
        last = [
            node for node in applied if not any(node in graph.forwards_plan(other)[:-1] for other in applied)
        ]
        commands.append(f"python manage.py migrate {app} {sorted(last)[0][1] if last else 'zero'}")
    return commands


def restore(connection, path: Path) -> RestoreReport:
    """Replace the archive's tables' rows by the archive's, in one transaction (see the module docstring)."""
    ensure_restorable(connection, path)
    tables = [table for table in archive_tables(path) if table != STATE_TABLE]
    ensure_no_cascade(connection, tables)
    report = RestoreReport(path=path)
    qn = connection.ops.quote_name
    try:
        with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")
            for table in tables:
                cursor.execute(f"DELETE FROM {qn(table)}")
            for table, statement, rows in copy_blocks(data_lines(path, *tables)):
                count = 0
                with cursor.copy(statement.replace(" FROM stdin", " FROM STDIN")) as copy:
                    for row in rows:
                        copy.write(row)
                        count += 1
                report.rows[table] = count
            # Check the foreign keys now, to report them, rather than in the COMMIT.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            for table in tables:
                advance_sequences(cursor, connection, table)
    except (DatabaseError, psycopg.Error) as exc:  # COPY raises the driver's errors unwrapped
        advice = (
            "Rows outside the backup (run history, alerts, admin log) point at rows the backup does not have; "
            "delete them first, or restore into a copy of the database and pick the rows you need."
            if sqlstate(exc) == FOREIGN_KEY_VIOLATION
            else "Check that the file is a safe_migrate backup of this database."
        )
        raise BackupError(
            f"the restore of {path} was rolled back, nothing changed: {first_line(exc)}. {advice}"
        ) from exc
    return report


def ensure_restorable(connection, path: Path) -> None:
    """Refuse (BackupError) unless the database is PostgreSQL and its migration state is the archive's."""
    if not catalog.is_postgresql(connection):
        raise BackupError("restoring a backup needs PostgreSQL (backups are pg_dump archives)")
    if not path.is_file():
        raise BackupError(f"no backup file at {path}")
    since, undone = state_difference(connection, path)
    if since or undone:
        raise BackupError(refusal(connection, path, since, undone))


def refusal(connection, path: Path, since: set, undone: set) -> str:
    lines = [f"refusing to restore {path}: the database's migrations are not the backup's."]
    if since:
        lines.append("  applied since the backup: " + ", ".join(f"{a}.{n}" for a, n in sorted(since)))
    if undone:
        lines.append("  unapplied since the backup: " + ", ".join(f"{a}.{n}" for a, n in sorted(undone)))
    changed = {app for app, _ in since | undone}
    lines.append("Bring the database to the backup's state first, then restore again:")
    lines += [f"  {command}" for command in commands_back(archived_state(path), changed, connection)]
    return "\n".join(lines)


def ensure_no_cascade(connection, tables: list[str]) -> None:
    """Refuse when deleting a critical row would make PostgreSQL cascade into a table outside the backup."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT conrelid::regclass::text, conname FROM pg_constraint
            WHERE contype = 'f' AND confdeltype NOT IN ('a', 'r')
              AND confrelid::regclass::text = ANY(%s) AND NOT conrelid::regclass::text = ANY(%s)
            """,
            [tables, tables],
        )
        cascading = cursor.fetchall()
    if cascading:
        named = ", ".join(f"{table} ({name})" for table, name in cascading)
        raise BackupError(f"refusing to restore: deleting the current rows would cascade into {named}")


def advance_sequences(cursor, connection, table: str) -> None:
    """Keep an identity or serial column's sequence past the restored rows (no duplicate key on next insert)."""
    pk = connection.introspection.get_primary_key_column(cursor, table)
    if pk is None:
        return
    cursor.execute("SELECT pg_get_serial_sequence(%s, %s)", [connection.ops.quote_name(table), pk])
    sequence = cursor.fetchone()[0]
    if sequence is None:
        return
    qn = connection.ops.quote_name
    cursor.execute(
        f"SELECT setval(%s, GREATEST((SELECT COALESCE(MAX({qn(pk)}), 1) FROM {qn(table)}), "
        f"(SELECT last_value FROM {sequence})))",
        [sequence],
    )
