"""``python manage.py generate_dags``: compile active and paused pipelines into Airflow DAG files."""

from __future__ import annotations

import uuid

from django.core.management.base import BaseCommand, CommandError

from django_etl.pipelines.generator import generate


def _pipeline_id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise CommandError(f"--pipeline {value!r} is not a pipeline id (a UUID)") from None


class Command(BaseCommand):
    help = (
        "Write one Airflow DAG file per active or paused pipeline, and remove generated files of other "
        "pipelines. Exits non-zero when a pipeline fails validation, or with --check when the folder is stale."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--output", help="Dags folder to write (default: settings.ETL_DAGS_FOLDER).")
        parser.add_argument(
            "--pipeline",
            action="append",
            dest="pipelines",
            metavar="ID",
            help="Only this pipeline's file (repeatable); other files are left alone.",
        )
        parser.add_argument(
            "--check", action="store_true", help="Change nothing; fail and list differences if stale."
        )
        parser.add_argument("--dry-run", action="store_true", help="Change nothing; show what would change.")
        parser.add_argument(
            "--no-trial-build",
            action="store_true",
            help="Skip building each changed DAG with Airflow before writing it (faster, less safe).",
        )

    def handle(self, *args, **options) -> None:
        ids = [_pipeline_id(v) for v in options["pipelines"]] if options["pipelines"] else None
        verbose = options["verbosity"] >= 1
        summary = generate(
            output=options["output"],
            pipeline_ids=ids,
            check=options["check"],
            dry_run=options["dry_run"],
            trial_build=False if options["no_trial_build"] else None,
            log=(lambda line: self.stdout.write(line)) if verbose else (lambda line: None),
        )
        if options["check"] and summary.changed:
            for difference in summary.differences():
                self.stderr.write(difference)
        if not summary.ok:
            raise CommandError(f"{len(summary.failed)} pipeline(s) failed:\n{summary.report()}")
        if options["check"] and summary.changed:
            raise CommandError(f"{summary.folder} is stale: run generate_dags")
