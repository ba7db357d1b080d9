"""manage_partitions: create the monthly task_runs partitions ahead and empty the default partition."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.db import connections

from django_etl.runs import partitioning


class Command(BaseCommand):
    help = (
        "Create task_runs partitions for this month and the next N months, and for every month that has rows "
        "in the default partition (those rows move into their month). PostgreSQL only; safe to run repeatedly, "
        "e.g. daily from cron."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--months-ahead",
            type=int,
            default=3,
            help="How many months after this one to create (default 3).",
        )
        parser.add_argument("--database", default="default", help="Database alias (default: default).")

    def handle(self, *args, months_ahead: int, database: str, **options) -> None:
        if months_ahead < 0:
            raise CommandError("--months-ahead must be 0 or more.")
        connection = connections[database]
        if not partitioning.is_postgresql(connection):
            self.stdout.write(f"{connection.vendor}: task_runs is a plain table here; nothing to do.")
            return

        def progress(name: str, moved: int) -> None:
            suffix = f", moved {moved} row(s) out of the default partition" if moved else ""
            self.stdout.write(f"  created {name}{suffix}")

        report = partitioning.ensure_partitions(connection, months_ahead=months_ahead, progress=progress)
        left = partitioning.default_partition_rows(connection)
        self.stdout.write(
            self.style.SUCCESS(
                f"task_runs partitions: {len(report.created)} created, {len(report.existing)} already present, "
                f"{sum(report.moved_rows.values())} row(s) moved; {left} row(s) left in the default partition."
            )
        )
