"""rollup_runs: sum task runs per step and UTC day into task_runs_daily (what the dashboard's step figures read)."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from django_etl.runs import rollup


class Command(BaseCommand):
    help = (
        "Sum task runs per step and UTC day (by the run's start) into task_runs_daily, from the day before the "
        "last pass up to now, and drop days older than 40; the dashboard's slowest and most failing steps read "
        "these sums plus the task runs newer than the pass. The etl_run_rollups DAG runs it every 10 minutes; "
        "safe to run any time."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--database", default="default", help="Database alias (default: default).")

    def handle(self, *args, database: str, **options) -> None:
        summary = rollup.refresh(database=database, progress=lambda text: self.stdout.write(f"  {text}"))
        self.stdout.write(
            self.style.SUCCESS(
                f"task_runs_daily: {len(summary['days'])} day(s) summed ({summary['rows']} row(s)), "
                f"{summary['dropped']} old row(s) dropped; computed until {summary['computed_until']}."
            )
        )
