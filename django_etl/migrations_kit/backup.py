"""A backup of the critical tables and the migration state before migrating, with ``pg_dump -Fc``.

The critical tables are what people configured and cannot re-create from Airflow: organizations, users (with
their groups and permissions), memberships, connectors, credentials (still encrypted), pipelines, steps; plus
``django_migrations``, the state the rows belong to. Run history is not in it (it is large and Airflow can
tell it again). The file is one ``pg_dump`` custom-format archive, readable only by its owner (0600) in a
folder only its owner can open (0700): it holds password hashes and encrypted secrets. ``restore`` puts it back.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from django.apps import apps

from django_etl.migrations_kit.archive import STATE_TABLE, BackupError, archive_tables, stderr_text, tool

CRITICAL_MODELS = (
    "core.Organization",
    "core.User",
    "core.OrganizationMembership",
    "connectors.Connector",
    "connectors.Credential",
    "pipelines.Pipeline",
    "pipelines.PipelineStep",
)


@dataclass
class Backup:
    path: Path
    tables: list[str]
    size: int


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
    options = ["--format=custom", "--no-owner", "--no-privileges", "--strict-names"]
    options += [f"--table={quote_pattern(schema)}.{quote_pattern(table)}" for table in tables]
    command, env = client_command(connection, "pg_dump", options)
    path, descriptor = new_owner_only_file(owner_only_folder(folder), connection, now)
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


def new_owner_only_file(folder: Path, connection, now: dt.datetime | None) -> tuple[Path, int]:
    """``<database>-<UTC time>.pgdump``, created 0600 before a byte is written (pg_dump writes through it)."""
    stamp = (now or dt.datetime.now(dt.UTC)).strftime("%Y%m%dT%H%M%SZ")
    database = re.sub(r"[^\w.-]", "_", str(connection.settings_dict["NAME"]))
    for attempt in range(1, 100):
        path = folder / f"{database}-{stamp}{'' if attempt == 1 else f'-{attempt}'}.pgdump"
        try:
            return path, os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            continue  # another backup in the same second
    raise BackupError(f"cannot create a backup file in {folder}: too many backups this second")


def current_schema(connection) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_schema()")
        return cursor.fetchone()[0]


def quote_pattern(name: str) -> str:
    """A pg_dump --table pattern matching exactly ``name`` (quoted: no case folding, no wildcards)."""
    return '"' + name.replace('"', '""') + '"'
