"""A backup of the critical tables and the migration state before migrating (``pg_dump -Fc``), and its restore.

The critical tables are what people configured and cannot re-create from Airflow: organizations, users (with
their groups and permissions), memberships, connectors, credentials (still encrypted), pipelines, steps; plus
``django_migrations``, the state the rows belong to. Run history is not in it (it is large and Airflow can
tell it again). The file is one ``pg_dump`` custom-format archive, readable only by its owner (0600) in a
folder only its owner can open (0700): it holds password hashes and encrypted secrets.

Restoring replaces the rows of the archive's tables by the archive's, in one transaction, and refuses when the
database's migration state is not the archive's (the rows would not fit the tables): migrate back to it first,
the refusal names the commands. Rows elsewhere that point at rows the archive does not have stop the restore
(foreign keys are checked before it commits), so run history is never orphaned.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from django.apps import apps
from django.db import DatabaseError, transaction
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.recorder import MigrationRecorder

from django_etl.errors import EtlError, first_line
from django_etl.migrations_kit import catalog

CRITICAL_MODELS = (
    "core.Organization",
    "core.User",
    "core.OrganizationMembership",
    "connectors.Connector",
    "connectors.Credential",
    "pipelines.Pipeline",
    "pipelines.PipelineStep",
)
STATE_TABLE = MigrationRecorder.Migration._meta.db_table
COPY_HEADER = re.compile(r"^COPY (?P<table>\S+) \((?P<columns>[^)]*)\) FROM stdin;$")


class BackupError(EtlError):
    """A backup could not be taken or restored; the message says why and what to do."""


@dataclass
class Backup:
    path: Path
    tables: list[str]
    size: int


@dataclass
class RestoreReport:
    path: Path
    rows: dict[str, int] = field(default_factory=dict)


def critical_tables(connection) -> list[str]:
    """The critical tables that exist in this database, with the many-to-many tables of their models."""
    tables: list[str] = []
    for dotted in CRITICAL_MODELS:
        model = apps.get_model(dotted)
        tables.append(model._meta.db_table)
        tables += [
            many.remote_field.through._meta.db_table
            for many in model._meta.local_many_to_many
            if many.remote_field.through._meta.auto_created
        ]
    existing = set(connection.introspection.table_names())
    return [table for table in dict.fromkeys(tables) if table in existing]


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise BackupError(
            f"{name} is not on PATH: install the PostgreSQL client programs of the server's major version "
            "(Debian/Ubuntu: postgresql-client), or run safe_migrate with --no-backup to migrate without a backup."
        )
    return path


def client_command(connection, program: str, options: list[str]) -> tuple[list[str], dict[str, str]]:
    """``program`` with the connection's host, port, user and database; the password goes in the environment."""
    args, env = connection.client.settings_to_cmd_args_env(connection.settings_dict, options)
    return [tool(program), *args[1:]], {**os.environ, **(env or {})}


def owner_only_folder(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    folder.chmod(0o700)
    return folder


def take(connection, folder: Path, *, now: dt.datetime | None = None) -> Backup | None:
    """Dump the critical tables and the migration state into a new owner-only file; None if none exist yet."""
    tables = critical_tables(connection)
    if not tables:
        return None
    if STATE_TABLE in set(connection.introspection.table_names()):
        tables.append(STATE_TABLE)
    schema = current_schema(connection)
    stamp = (now or dt.datetime.now(dt.UTC)).strftime("%Y%m%dT%H%M%SZ")
    database = re.sub(r"[^\w.-]", "_", str(connection.settings_dict["NAME"]))
    path = owner_only_folder(folder) / f"{database}-{stamp}.pgdump"
    options = ["--format=custom", "--no-owner", "--no-privileges", "--strict-names"]
    options += [f"--table={quote_pattern(schema)}.{quote_pattern(table)}" for table in tables]
    command, env = client_command(connection, "pg_dump", options)
    # Created 0600 before a byte is written; pg_dump writes through the descriptor.
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as output:
            os.fchmod(output.fileno(), 0o600)
            result = subprocess.run(command, stdout=output, stderr=subprocess.PIPE, env=env, check=False)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    if result.returncode != 0:
        path.unlink(missing_ok=True)
        raise BackupError(
            f"pg_dump failed, so nothing was migrated: {stderr_text(result)}. If it names a server version "
            "mismatch, install the client programs of the server's major version; or run with --no-backup."
        )
    listed = archive_tables(path)
    missing = sorted(set(tables) - set(listed))
    if missing:
        raise BackupError(f"the backup {path} lacks the data of {', '.join(missing)}; nothing was migrated")
    return Backup(path=path, tables=tables, size=path.stat().st_size)


def current_schema(connection) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_schema()")
        return cursor.fetchone()[0]


def quote_pattern(name: str) -> str:
    """A pg_dump --table pattern matching exactly ``name`` (quoted: no case folding, no wildcards)."""
    return '"' + name.replace('"', '""') + '"'


def stderr_text(result: subprocess.CompletedProcess) -> str:
    text = (result.stderr or b"").decode(errors="replace").strip()
    return first_line(Exception(text)) if text else f"exit status {result.returncode}"


def archive_tables(path: Path) -> list[str]:
    """The tables whose data the archive holds (``pg_restore --list``)."""
    result = subprocess.run([tool("pg_restore"), "--list", str(path)], capture_output=True, check=False)
    if result.returncode != 0:
        raise BackupError(f"{path} is not a readable pg_dump archive: {stderr_text(result)}")
    tables = []
    for line in result.stdout.decode(errors="replace").splitlines():
        if line.startswith(";"):
            continue
        match = re.search(r"\bTABLE DATA (\S+) (\S+) ", line)
        if match:
            tables.append(match.group(2))
    return tables


def data_lines(path: Path, *tables: str) -> Iterator[bytes]:
    """The archive's data as SQL (``pg_restore --data-only``), streamed line by line."""
    command = [
        tool("pg_restore"),
        "--data-only",
        "--file=-",
        *[f"--table={table}" for table in tables],
        str(path),
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        yield from process.stdout
    finally:
        process.stdout.close()
        stderr = process.stderr.read()
        if process.wait() != 0:
            raise BackupError(f"pg_restore could not read {path}: {stderr.decode(errors='replace').strip()}")


def copy_blocks(lines: Iterator[bytes]) -> Iterator[tuple[str, str, Iterator[bytes]]]:
    """(table, COPY statement, its data lines) for each COPY block of pg_restore's SQL."""
    for line in lines:
        match = COPY_HEADER.match(line.decode(errors="replace").rstrip("\n"))
        if not match:
            continue
        table = match.group("table").split(".")[-1].strip('"')
        yield table, match.group(0).removesuffix(";"), block_rows(lines)


def block_rows(lines: Iterator[bytes]) -> Iterator[bytes]:
    for line in lines:
        if line.rstrip(b"\n") == b"\\.":
            return
        yield line


def archived_state(path: Path) -> set[tuple[str, str]]:
    """The (app, migration) pairs applied when the archive was taken."""
    state: set[tuple[str, str]] = set()
    for _table, statement, rows in copy_blocks(data_lines(path, STATE_TABLE)):
        columns = [
            column.strip().strip('"')
            for column in COPY_HEADER.match(statement + ";").group("columns").split(",")
        ]
        app, name = columns.index("app"), columns.index("name")
        for row in rows:
            values = row.decode().rstrip("\n").split("\t")
            state.add((unescape(values[app]), unescape(values[name])))
    return state


def unescape(value: str) -> str:
    """COPY text format: backslash escapes (migration names have none in practice)."""
    return re.sub(
        r"\\(.)", lambda match: {"t": "\t", "n": "\n", "r": "\r"}.get(match.group(1), match.group(1)), value
    )


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
    except DatabaseError as exc:
        raise BackupError(
            f"the restore of {path} was rolled back, nothing changed: {first_line(exc)}. Rows outside the backup "
            "(run history, alerts, admin log) point at rows the backup does not have; delete them first, or "
            "restore into a copy of the database and pick the rows you need."
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
