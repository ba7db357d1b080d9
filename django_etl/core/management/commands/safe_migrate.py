"""safe_migrate: migrate a live database with checks, a backup and monitoring (docs/migrations.md)."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import DEFAULT_DB_ALIAS, connections

from django_etl.errors import EtlError
from django_etl.migrations_kit import safe


class Command(BaseCommand):
    help = (
        "Migrate a database that is in use, the careful way. (1) For each pending migration that adds a "
        "constraint (check, unique, NOT NULL, shorter max_length), count and show the existing rows that "
        "would break it, and stop before changing anything if there are any. (2) Back up the critical tables "
        "(organizations, users, memberships, connectors, credentials, pipelines, steps) and the migration state "
        "with pg_dump -Fc into a file only its owner can read (ETL_MIGRATION_BACKUP_DIR, default var/backups). "
        "(3) Migrate, every migration under ETL_MIGRATION_LOCK_TIMEOUT and ETL_MIGRATION_STATEMENT_TIMEOUT, "
        "retried up to ETL_MIGRATION_RETRIES times after a lock timeout, printing each migration's progress, "
        "lock waits (and the session holding the lock) and duration. --restore FILE puts a backup's rows back "
        "(only when the database's migration state is the backup's). See docs/migrations.md."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("app_label", nargs="?", help="Migrate only this app (as for migrate).")
        parser.add_argument(
            "migration_name", nargs="?", help='Bring the app to this migration ("zero" unapplies all).'
        )
        parser.add_argument("--database", default=DEFAULT_DB_ALIAS, help="Database alias (default: default).")
        parser.add_argument(
            "--backup-dir", type=Path, help="Folder for the backup file (default: ETL_MIGRATION_BACKUP_DIR)."
        )
        parser.add_argument(
            "--no-backup", action="store_true", help="Migrate without taking a backup (checks still run)."
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="List the pending migrations and run the checks only."
        )
        parser.add_argument(
            "--restore",
            type=Path,
            metavar="FILE",
            help="Replace the critical tables' rows by this backup's, instead of migrating.",
        )
        parser.add_argument(
            "--noinput", "--no-input", action="store_false", dest="interactive", help="Do not ask to confirm."
        )

    def handle(self, *args, **options) -> None:
        connection = connections[options["database"]]
        try:
            if options["restore"]:
                confirm = self.confirm if options["interactive"] else None
                safe.restore(connection, options["restore"], write=self.stdout.write, confirm=confirm)
                return
            safe.safe_migrate(
                connection,
                write=self.stdout.write,
                app_label=options["app_label"],
                migration_name=options["migration_name"],
                take_backup=not options["no_backup"],
                backup_dir=options["backup_dir"],
                dry_run=options["dry_run"],
                verbosity=options["verbosity"],
                stdout=self.stdout,
            )
        except EtlError as exc:
            raise CommandError(str(exc)) from exc

    def confirm(self, question: str) -> bool:
        return input(question).strip().lower() == "yes"
