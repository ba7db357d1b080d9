"""catch_up_runs: fill what write-back missed (Django's database was away) from Airflow's REST API."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from django_etl.control.airflow_api import AirflowRefused, AirflowUnavailable
from django_etl.control.catchup import CatchUpFailed, catch_up_runs, parse_since
from django_etl.errors import ConfigurationError


class Command(BaseCommand):
    help = (
        "Read the pipeline DAG runs Airflow changed recently (ETL_CATCHUP_WINDOW_HOURS, or --since) through its "
        "REST API (ETL_AIRFLOW_API_URL, as ETL_AIRFLOW_USERNAME) and record in Django every run, task run and "
        "alert write-back could not deliver, as live write-back would have. Safe to run again: what is complete "
        "is left alone. The etl_catchup DAG runs the same every ETL_CATCHUP_SCHEDULE."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--since",
            default=None,
            help="How far back: a duration (90m, 6h, 2d) or an ISO 8601 time (default: ETL_CATCHUP_WINDOW_HOURS).",
        )
        parser.add_argument("--dag-id", default=None, help="Only this pipeline's DAG (pipeline_<id>).")
        parser.add_argument(
            "--dry-run", action="store_true", help="Say which runs lack something; write nothing."
        )

    def handle(self, *args, since: str | None, dag_id: str | None, dry_run: bool, **options) -> None:
        try:
            report = catch_up_runs(
                since=parse_since(since) if since else None,
                dag_id=dag_id,
                dry_run=dry_run,
                out=self.stdout.write,
            )
        except (AirflowUnavailable, AirflowRefused, ConfigurationError, CatchUpFailed) as exc:
            raise CommandError(str(exc)) from None
        if report.failed:
            raise CommandError(f"{len(report.failed)} run(s) not caught up: " + "; ".join(report.failed[:10]))
