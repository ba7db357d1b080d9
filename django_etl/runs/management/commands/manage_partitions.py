"""manage_partitions: task_runs partitions ahead, the default partition emptied, old months archived or restored."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.db import connections

from django_etl.runs import archive, maintenance, partitioning, retention


class Command(BaseCommand):
    help = (
        "Keep task_runs' monthly partitions (docs/partitioning.md): create this month and the next N, move rows "
        "out of the default partition into their month, archive months older than the retention "
        "(ETL_TASK_RUNS_RETENTION_MONTHS; off by default) to ETL_PARTITION_ARCHIVE_URL, then detach and drop them, "
        "and raise a platform alert when fewer than two future months exist or the default partition holds rows. "
        "Safe to run repeatedly; an interrupted archive resumes. The etl_partitions DAG runs it daily. "
        "--restore YYYY-MM brings an archived month back; --archive YYYY-MM archives one month now."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--months-ahead",
            type=int,
            default=None,
            help="How many months after this one to create (default ETL_PARTITIONS_MONTHS_AHEAD, 3).",
        )
        parser.add_argument(
            "--retention-months",
            type=int,
            default=None,
            help="Keep this month and N before it; archive older ones (default ETL_TASK_RUNS_RETENTION_MONTHS; "
            "0: keep everything).",
        )
        parser.add_argument(
            "--archive-url",
            default=None,
            help="Where archives go or come from: a folder or s3://bucket/prefix (default ETL_PARTITION_ARCHIVE_URL).",
        )
        parser.add_argument("--restore", metavar="YYYY-MM", help="Restore this archived month, then stop.")
        parser.add_argument(
            "--archive", metavar="YYYY-MM", help="Archive, detach and drop this month now, then stop."
        )
        parser.add_argument("--database", default="default", help="Database alias (default: default).")

    def handle(self, *args, database: str, **options) -> None:
        connection = connections[database]
        if not partitioning.is_postgresql(connection):
            self.stdout.write(f"{connection.vendor}: task_runs is a plain table here; nothing to do.")
            return
        for name in ("months_ahead", "retention_months"):
            if options[name] is not None and options[name] < 0:
                raise CommandError(f"--{name.replace('_', '-')} must be 0 or more.")
        say = self.stdout.write
        try:
            if options["restore"] or options["archive"]:
                job = retention.restore_month if options["restore"] else retention.archive_month
                month = retention.parse_month(options["restore"] or options["archive"])
                with retention.exclusive(connection):
                    record = job(month, connection=connection, location=options["archive_url"], progress=say)
                self.stdout.write(self.style.SUCCESS(f"{record.partition}: {record.get_state_display()}."))
                return
            summary = maintenance.maintain_partitions(
                months_ahead=options["months_ahead"],
                retention_months=options["retention_months"],
                location=options["archive_url"],
                database=database,
                progress=lambda text: say(f"  {text}"),
            )
        except archive.ArchiveError as exc:
            raise CommandError(str(exc)) from exc
        future = ", ".join(summary["future_months"]) or "none"
        self.stdout.write(
            self.style.SUCCESS(
                f"task_runs partitions: {len(summary['created'])} created, "
                f"{sum(summary['moved_rows'].values())} row(s) moved, {len(summary['archived'])} month(s) archived; "
                f"months ahead: {future}; {summary['default_rows']} row(s) left in the default partition."
            )
        )
        for condition, outcome in summary["alerts"].items():
            if outcome in ("raised", "updated"):
                self.stdout.write(self.style.WARNING(f"  alert {outcome}: {condition}"))
