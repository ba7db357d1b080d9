"""Run now, webhook runs and re-runs from Django: Django chooses the run id and records who asked, then triggers.

The pending PipelineRun is created first, with ``triggered_by`` the Django user (or nobody, for a webhook),
``trigger_type`` api or webhook and ``context.origin = "django"`` (write-back never overrides these from
Airflow's conf or user names); then Airflow is asked to start the run with that id. If Airflow cannot be
reached or refuses, the row is deleted again and the error raised: Django is left as it was.

Every run gets a real data interval (docs/dag-mapping.md, "Data intervals"): the one the trigger gives, else
the last complete interval of the pipeline's schedule, else (no schedule, ``@once``, ``@continuous``) the
previous whole day in the pipeline's time zone.
"""

from __future__ import annotations

import secrets as random
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.db import transaction
from django.utils import timezone

from django_etl.control.airflow_api import AirflowClient, AirflowRefused, AirflowUnavailable
from django_etl.runs.choices import RunStatus, TriggerType

CRON_PRESETS = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@quarterly": "0 0 1 */3 *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}


def last_complete_interval(pipeline, now: datetime | None = None) -> tuple[datetime, datetime]:
    """The latest [start, end) of the pipeline's schedule that has fully passed by ``now``."""
    from croniter import croniter

    config = pipeline.config or {}
    zone = ZoneInfo(config.get("timezone") or "UTC")
    now = (now or timezone.now()).astimezone(zone)
    schedule = config.get("schedule")
    cron = CRON_PRESETS.get(schedule, schedule)
    if cron and not str(cron).startswith("@") and croniter.is_valid(cron):
        end = croniter(cron, now).get_prev(datetime)
        start = croniter(cron, end).get_prev(datetime)
        return start, end
    end = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return end - timedelta(days=1), end


def new_run_id(kind: str, now: datetime | None = None) -> str:
    """``etl_<kind>__<UTC time>_<random>``: unique, and readable in Airflow's run list."""
    stamp = (now or timezone.now()).astimezone(ZoneInfo("UTC")).strftime("%Y%m%dT%H%M%S")
    return f"etl_{kind}__{stamp}_{random.token_hex(4)}"


def start_run(
    pipeline,
    *,
    user=None,
    trigger_type: str = TriggerType.API,
    params: dict[str, Any] | None = None,
    interval: tuple[datetime, datetime] | None = None,
    client: AirflowClient | None = None,
):
    """Create the pending PipelineRun, then trigger its DAG run; on any Airflow error, delete it and raise."""
    from django_etl.runs.models import PipelineRun

    client = client or AirflowClient.from_settings()
    now = timezone.now()
    interval = interval or last_complete_interval(pipeline, now)
    run_id = new_run_id(str(trigger_type), now)
    with transaction.atomic():
        run = PipelineRun.objects.create(
            pipeline=pipeline,
            status=RunStatus.PENDING,
            trigger_type=trigger_type,
            triggered_by=user,
            started_at=now,
            airflow_dag_id=pipeline.dag_id,
            airflow_run_id=run_id,
            context={
                "origin": "django",
                "conf": dict(params or {}),
                "data_interval": {"start": interval[0].isoformat(), "end": interval[1].isoformat()},
                "pipeline_version": pipeline.version,
                "spec_source": "django",
            },
        )
    try:
        client.trigger(
            pipeline.dag_id,
            run_id=run_id,
            conf=dict(params or {}),
            interval=interval,
            logical_date=now,
            note=f"{trigger_type} from Django" + (f" by {user.get_username()}" if user else ""),
        )
    except (AirflowUnavailable, AirflowRefused):
        PipelineRun.objects.filter(pk=run.pk).delete()
        raise
    return run


def rerun_failed_tasks(pipeline_run, *, client: AirflowClient | None = None) -> int:
    """Clear the run's failed and upstream-failed tasks in Airflow so they run again; how many were cleared.

    Airflow puts the run back to queued/running; write-back then reopens the PipelineRun (status running,
    the version that re-ran) and settles it again when the re-run ends.
    """
    client = client or AirflowClient.from_settings()
    if not pipeline_run.airflow_dag_id or not pipeline_run.airflow_run_id:
        raise AirflowRefused("this run has no Airflow DAG run to re-run", status=400)
    answer = client.clear_failed_tasks(pipeline_run.airflow_dag_id, pipeline_run.airflow_run_id)
    return len((answer or {}).get("task_instances") or [])
