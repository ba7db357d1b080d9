"""The maintenance DAG: runs generate_dags on a schedule, so a dags folder far from Django follows it.

``dags/etl_maintenance.py`` calls ``build_maintenance_dag()``. Each run first compares a cheap fingerprint of
what generation depends on (``generator.fingerprint``: pipelines' ids, versions, statuses and times,
connectors, the compiler's code, the folder's files) with the one the last generation left in the folder; when
nothing changed it stops there. A pipeline that does not compile fails the run with the validation report,
keeps its previous file (the generator never replaces a good file with a broken one) and raises an Alert in
Django for that pipeline's organization (one open alert per pipeline, updated by a new report, resolved once it
compiles); any other failure raises a platform Alert (ETL_MAINTENANCE_ALERTS). Schedule: ETL_MAINTENANCE_SCHEDULE (a cron expression, default every 15 minutes —
saves regenerate at once, this only catches what they missed; "off" for manual runs only). The folder written
is the worker's Django setting ETL_DAGS_FOLDER.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pendulum
from airflow.sdk import DAG, BaseOperator

from django_etl import conf

MAINTENANCE_DAG_ID = "etl_generate_dags"
FINGERPRINT_NAME = ".generate_dags.fingerprint"
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
        from django.conf import settings

        from django_etl.pipelines.generator import fingerprint, generate

        folder = Path(self.dags_folder or settings.ETL_DAGS_FOLDER)
        state = folder / FINGERPRINT_NAME
        before = fingerprint(folder)
        if _read(state) == before:
            self.log.info("generate_dags: nothing changed in Django since the last generation")
            return {"skipped": 1}
        try:
            summary = generate(output=folder, log=self.log.info)
        except Exception as exc:
            raise_platform_alert(exc)
            raise
        resolve_compiled(summary)
        if not summary.ok:
            pipeline_alerts(summary)
            # Permanent until someone fixes the pipeline: retrying would only repeat the report.
            raise AirflowFailException(
                f"{len(summary.failed)} pipeline(s) do not compile and keep their previous DAG file:\n"
                f"{summary.report()}"
            )
        # Taken after writing: the folder's files are part of it. A failed run leaves the old one (retries).
        state.write_text(fingerprint(folder))
        return {
            "created": len(summary.created),
            "updated": len(summary.updated),
            "unchanged": len(summary.unchanged),
            "removed": len(summary.removed),
        }


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _alerts_on() -> bool:
    return bool(conf.value("ETL_MAINTENANCE_ALERTS"))


def compile_condition(pipeline_key) -> str:
    """The condition "this pipeline does not compile" (one open alert per pipeline, whatever the report)."""
    from django_etl.monitoring.choices import AlertType
    from django_etl.monitoring.lifecycle import condition_key

    return condition_key(AlertType.PIPELINE_FAILED, pipeline_key, "compile")


CRASH_CONDITION = f"pipeline_failed:{MAINTENANCE_DAG_ID}:crash"


def pipeline_alerts(summary) -> int:
    """One open Alert per pipeline that does not compile, for its organization; a new report updates it.

    The report's hash is the event: the same report on every 15-minute run counts once; pipelines that
    compile again have their alert resolved. Returns how many alerts were created.
    """
    if not _alerts_on():
        return 0
    import hashlib

    from django_etl.monitoring.choices import AlertLevel, AlertType
    from django_etl.monitoring.lifecycle import raise_alert
    from django_etl.pipelines.models import Pipeline

    created = 0
    by_label = {
        f"{p.name} ({p.pk})": p for p in Pipeline.objects.filter(pk__in=[p.pk for p in summary.pipelines])
    }
    for label, report in summary.failed.items():
        pipeline = by_label.get(label)
        text = "\n".join(str(problem) for problem in report)
        pipeline_key = pipeline.pk if pipeline else label
        key = f"maintenance:{pipeline_key}:{hashlib.sha256(text.encode()).hexdigest()[:16]}"
        _, new = raise_alert(
            alert_type=AlertType.PIPELINE_FAILED,
            level=AlertLevel.ERROR,
            condition_key=compile_condition(pipeline_key),
            organization_id=pipeline.organization_id if pipeline else None,
            message=f"Pipeline {label} does not compile; Airflow keeps running its previous DAG file:\n{text}",
            metadata={
                "event_key": key,
                "source": MAINTENANCE_DAG_ID,
                "pipeline_id": str(pipeline.pk) if pipeline else None,
            },
        )
        created += int(new)
    return created


def resolve_compiled(summary) -> int:
    """Pipelines that compile (again): their "does not compile" alerts are over; so is a crash alert."""
    if not _alerts_on():
        return 0
    from django_etl.monitoring.lifecycle import CONDITION_CLEARED, resolve_alerts

    failed = set(summary.failed)
    keys = [compile_condition(p.pk) for p in summary.pipelines if f"{p.name} ({p.pk})" not in failed]
    return resolve_alerts(condition_keys=[*keys, CRASH_CONDITION], how=CONDITION_CLEARED)


def raise_platform_alert(exc: BaseException) -> None:
    """The generator itself failed (database, folder): a platform Alert (no organization: operators see it)."""
    if not _alerts_on():
        return
    try:
        from django_etl.errors import first_line
        from django_etl.monitoring.choices import AlertLevel, AlertType
        from django_etl.monitoring.lifecycle import raise_alert

        raise_alert(
            alert_type=AlertType.PIPELINE_FAILED,
            level=AlertLevel.CRITICAL,
            condition_key=CRASH_CONDITION,
            message=f"The maintenance DAG {MAINTENANCE_DAG_ID} failed: {first_line(exc)}",
            metadata={
                "event_key": f"maintenance:crash:{first_line(exc)[:200]}",
                "source": MAINTENANCE_DAG_ID,
            },
        )
    except Exception:  # the database itself may be what failed; the task's own failure still shows it
        pass


def maintenance_schedule(value: str | None = None) -> str | None:
    """A cron expression, or None for manual runs only; from ETL_MAINTENANCE_SCHEDULE when not given."""
    if value is None:
        value = conf.value("ETL_MAINTENANCE_SCHEDULE")
    value = value.strip()
    return None if value.lower() in OFF else value


def build_maintenance_dag(*, schedule: str | None = None, output: str | None = None) -> DAG:
    """The DAG with one task that brings the dags folder in line with Django (default: every 15 minutes).

    ``schedule``: a cron expression or "off"; default ETL_MAINTENANCE_SCHEDULE.
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
