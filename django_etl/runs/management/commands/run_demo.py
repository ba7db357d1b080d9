"""run_demo: run the demo pipeline through Airflow in this process and print what write-back recorded."""

from __future__ import annotations

import os

from django.core.management.base import BaseCommand, CommandError

from django_etl.runs.choices import RunStatus
from django_etl.runs.demo_run import DEFAULT_PIPELINE, run_pipeline
from django_etl.runs.run_report import browse_lines, report_lines


class Command(BaseCommand):
    help = (
        "Generate the DAG files, run one pipeline (default: the demo's 'Daily orders') through Airflow with "
        "dag.test() on the embedded SQLite metadata DB, and print its run, task runs, alerts and lineage."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--pipeline", default=DEFAULT_PIPELINE, help="Name of the pipeline to run.")

    def handle(self, *args, **options) -> None:
        try:
            run = run_pipeline(options["pipeline"], out=self.stdout.write)
        except (LookupError, RuntimeError) as exc:
            raise CommandError(str(exc)) from exc
        if run is None:
            raise CommandError("Airflow ran the DAG but no PipelineRun was recorded; see the warnings above.")
        self.stdout.write("")
        for line in report_lines(run):
            self.stdout.write(line)
        for line in browse_lines(run, os.environ.get("AIRFLOW_HOME", "")):
            self.stdout.write(line)
        if run.status != RunStatus.SUCCESS:
            raise CommandError(f"the demo run ended {run.status}")
