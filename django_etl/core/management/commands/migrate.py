"""Django's migrate, with every migration under the lock and statement timeouts and bounded lock retries.

This app's command takes the place of Django's ``migrate`` (an installed app's command wins over
Django's own), so ``manage.py migrate``, ``safe_migrate``, deployments and test databases all run migrations
the same guarded way (docs/migrations.md). ``--monitor`` prints progress, lock waits and duration per migration.
"""

from __future__ import annotations

from django.core.management.base import CommandError
from django.core.management.commands import migrate
from django.db import connections

from django_etl.errors import EtlError
from django_etl.migrations_kit import plan, timeouts
from django_etl.migrations_kit.tracking import MigrationTracker


class Command(migrate.Command):
    help = (
        f"{migrate.Command.help} Each migration runs with PostgreSQL's lock_timeout "
        "(ETL_MIGRATION_LOCK_TIMEOUT) and statement_timeout (ETL_MIGRATION_STATEMENT_TIMEOUT); one that hits "
        "the lock timeout runs again, up to ETL_MIGRATION_RETRIES times, when it can safely (atomic, or made of "
        "retry-safe operations). See docs/migrations.md; `safe_migrate` adds checks and a backup."
    )

    def add_arguments(self, parser) -> None:
        super().add_arguments(parser)
        parser.add_argument(
            "--monitor",
            action="store_true",
            help="Print each migration's position in the plan, its lock waits (and who holds the lock) and "
            "its duration, then a summary.",
        )

    def handle(self, *args, **options) -> None:
        connection = connections[options["database"]]
        self.tracker = MigrationTracker(connection, write=self.stdout.write, monitor=options["monitor"])
        run_django_migrate = super().handle

        def run() -> None:
            total = None
            if options["monitor"]:
                try:
                    total = len(plan.pending(connection, options["app_label"], options["migration_name"]))
                except EtlError:
                    total = None  # Django's migrate reports the bad argument in its own words
            self.tracker.begin(total)
            try:
                run_django_migrate(*args, **options)
            finally:
                self.tracker.stop_watching()

        def report(text: str) -> None:
            # Django's own output left "Applying x..." waiting for its " OK" on the line.
            partial_line = not self.tracker.monitor and self.tracker.in_flight is not None
            self.stdout.write(self.style.WARNING(("\n" if partial_line else "") + text))

        try:
            timeouts.guarded(
                run, connection=connection, in_flight=lambda: self.tracker.in_flight, report=report
            )
        except EtlError as exc:
            raise CommandError(str(exc)) from exc
        if options["monitor"] and self.tracker.timings:
            self.stdout.write(self.style.SUCCESS(f"Migrated: {self.tracker.summary()}."))

    def migration_progress_callback(self, action, migration=None, fake=False) -> None:
        self.tracker(action, migration, fake)
        if not self.tracker.monitor:
            super().migration_progress_callback(action, migration, fake)
