"""safe_migrate put together: pre-check the pending constraints, back up the critical tables, migrate, monitored.

Also the restore of such a backup. The ``safe_migrate`` command only turns its arguments into these calls.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError

from django_etl import conf
from django_etl.errors import EtlError, first_line
from django_etl.migrations_kit import archive, backup, catalog, plan, precheck, timeouts
from django_etl.migrations_kit import restore as restoring


class PrecheckFailed(EtlError):
    """Existing rows break a constraint a pending migration adds; nothing was changed."""


class MigrateFailed(EtlError):
    """The migration run failed after the backup was taken; the message says how to go back."""


def safe_migrate(
    connection,
    *,
    write: Callable[[str], None],
    app_label: str | None = None,
    migration_name: str | None = None,
    take_backup: bool = True,
    backup_dir: Path | None = None,
    dry_run: bool = False,
    verbosity: int = 1,
    stdout=None,
) -> backup.Backup | None:
    """Check, back up, migrate. Returns the backup taken (None when there was none)."""
    pending = plan.pending(connection, app_label, migration_name)
    if not pending:
        write("No migrations to apply: nothing checked, no backup taken.")
        return None
    write(f"{len(pending)} migration(s) to run on database {connection.settings_dict['NAME']!s}:")
    for migration, backwards in pending:
        write(f"  {plan.label(migration, backwards)}")

    write("Checking the existing rows against the constraints the migrations add...")
    report = precheck.check_plan(connection, pending)
    if report.violations:
        raise PrecheckFailed(
            "Existing rows would make these migrations fail; nothing was changed:\n"
            f"{report.describe()}\n"
            "Fix or delete those rows (or change the migration), then run safe_migrate again."
        )
    if report.checked:
        write(f"  {report.checked} rule(s) checked against existing rows: none broken.")
    else:
        write("  No pending migration adds a rule that existing rows must meet.")
    for note in report.notes:
        write(f"  note: {note}")
    if dry_run:
        write("Dry run: no backup taken, nothing migrated.")
        return None

    taken = None
    if not take_backup:
        write("No backup (--no-backup).")
    elif not catalog.is_postgresql(connection):
        write(
            f"No backup: backups are pg_dump archives and this database is {connection.vendor} (copy its file)."
        )
    else:
        taken = backup.take(connection, backup_dir or conf.value("ETL_MIGRATION_BACKUP_DIR"))
        if taken is None:
            write("No backup: none of the critical tables exists yet (a new database).")
        else:
            write(
                f"Backup of {', '.join(taken.tables)} ({taken.size} bytes, readable by its owner only):\n"
                f"  {taken.path}"
            )

    policy = timeouts.TimeoutPolicy.from_settings()
    write(
        f"Migrating (lock timeout {policy.lock_timeout:g} s, statement timeout {policy.statement_timeout:g} s, "
        f"up to {policy.retries} retries after a lock timeout):"
    )
    try:
        call_command(
            "migrate",
            *[value for value in (app_label, migration_name) if value],
            database=connection.alias,
            monitor=True,
            interactive=False,
            verbosity=verbosity,
            stdout=stdout,
        )
    except (CommandError, EtlError, DatabaseError) as exc:
        raise MigrateFailed(failure_message(connection, exc, taken)) from exc
    if taken is not None:
        write(f"Done. To undo: migrate back, then `python manage.py safe_migrate --restore {taken.path}`.")
    return taken


def failure_message(connection, exc: BaseException, taken: backup.Backup | None) -> str:
    text = str(exc) if isinstance(exc, (CommandError, EtlError)) else first_line(exc)
    if taken is None:
        return text
    lines = [text, f"The critical tables were backed up before migrating: {taken.path}"]
    try:
        since, undone = restoring.state_difference(connection, taken.path)
    except (EtlError, DatabaseError) as state_error:  # the failure itself comes first; this is advice
        lines.append(f"(Could not compare the migration state with the backup's: {first_line(state_error)}.)")
        since, undone = set(), set()
    if since or undone:
        changed = {app for app, _ in since | undone}
        lines.append("Migrations applied before the failure stay applied; to go back to the backup's state:")
        lines += [
            f"  {cmd}"
            for cmd in restoring.commands_back(archive.archived_state(taken.path), changed, connection)
        ]
    elif len(lines) == 2:
        lines.append(
            "The database's migration state is still the backup's (the failed migration was not applied)."
        )
    lines.append(
        f"The backup's rows can be put back with `python manage.py safe_migrate --restore {taken.path}`."
    )
    return "\n".join(lines)


def restore(
    connection, path: Path, *, write: Callable[[str], None], confirm: Callable[[str], bool] | None = None
) -> restoring.RestoreReport:
    """Put back the rows of a safe_migrate backup (after ``confirm`` agrees, when given)."""
    restoring.ensure_restorable(connection, path)
    tables = [table for table in archive.archive_tables(path) if table != archive.STATE_TABLE]
    question = (
        f"This replaces every row of {', '.join(tables)} in database {connection.settings_dict['NAME']!s} "
        f"with the rows of {path}. Type 'yes' to continue: "
    )
    if confirm is not None and not confirm(question):
        raise EtlError("Restore cancelled; nothing changed.")
    report = restoring.restore(connection, path)
    write(f"Restored from {path}:")
    for table, rows in report.rows.items():
        write(f"  {table}: {rows} row(s)")
    return report
