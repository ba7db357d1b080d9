"""The maintenance DAG: runs generate_dags on a schedule, so a dags folder far from Django follows it.

``dags/etl_maintenance.py`` calls ``build_maintenance_dag()``. A pipeline that does not compile fails the
run with the validation report, and keeps its previous file (the generator never replaces a good file with
a broken one). Schedule: ETL_MAINTENANCE_SCHEDULE (a cron expression, default every minute; "off" for
manual runs only). The folder written is the worker's Django setting ETL_DAGS_FOLDER.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import DAG, BaseOperator

from django_etl import conf

MAINTENANCE_DAG_ID = "etl_generate_dags"
OFF = {"", "off", "none", "manual"}


class GenerateDagsOperator(BaseOperator):
    """Runs the generator (django_etl.pipelines.generator.generate) in the task process."""

    template_fields = ("dags_folder",)
    ui_color = "#fdf1e8"

    def __init__(self, *, dags_folder: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.dags_folder = dags_folder or None

    def execute(self, context: Any) -> dict[str, int]:
        from airflow.sdk.exceptions import AirflowFailException

        from django_etl.startup import setup_django

        setup_django()
        from django_etl.pipelines.generator import generate

        summary = generate(output=self.dags_folder, log=self.log.info)
        if not summary.ok:
            # Permanent until someone fixes the pipeline: retrying would only repeat the report.
            raise AirflowFailException(
                f"{len(summary.failed)} pipeline(s) do not compile and keep their previous DAG file:\n"
                f"{summary.report()}"
            )
        return {
            "created": len(summary.created),
            "updated": len(summary.updated),
            "unchanged": len(summary.unchanged),
            "removed": len(summary.removed),
        }


def maintenance_schedule(value: str | None = None) -> str | None:
    """A cron expression, or None for manual runs only; from ETL_MAINTENANCE_SCHEDULE when not given."""
    if value is None:
        value = conf.value("ETL_MAINTENANCE_SCHEDULE")
    value = value.strip()
    return None if value.lower() in OFF else value


def build_maintenance_dag(*, schedule: str | None = None, output: str | None = None) -> DAG:
    """The DAG with one task that brings the dags folder in line with Django (default: every minute).

    ``schedule``: a cron expression or "off"; default ETL_MAINTENANCE_SCHEDULE, else every minute.
    """
    with DAG(
        dag_id=MAINTENANCE_DAG_ID,
        dag_display_name="ETL: generate DAG files",
        description="Compiles Django's active and paused pipelines into DAG files; removes stale ones.",
        doc_md=__doc__,
        schedule=maintenance_schedule(schedule),
        start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
        catchup=False,
        max_active_runs=1,
        dagrun_timeout=timedelta(minutes=10),
        is_paused_upon_creation=False,
        tags=["etl", "maintenance"],
        default_args={"owner": "etl", "retries": 0},
    ) as dag:
        GenerateDagsOperator(
            task_id="generate_dags", dags_folder=output, execution_timeout=timedelta(minutes=9)
        )
    return dag
