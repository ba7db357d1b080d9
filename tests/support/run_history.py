"""Seed a pipeline's run history in Django: successful runs with their task runs, durations and rows."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.utils import timezone


def seed_history(
    pipeline,
    steps: dict[Any, dict[str, float]],
    *,
    runs: int,
    run_seconds: float,
    rows: int,
    jitter: float = 0.03,
    end: dt.datetime | None = None,
) -> list:
    """``runs`` successful runs ending before ``end`` (a day apart, the newest an hour before it).

    ``steps``: step -> {"seconds": …, "rows": …}. Durations vary by ±``jitter`` (a share) so the MAD is not 0.
    """
    from django_etl.runs.models import PipelineRun, TaskRun

    end = end or timezone.now()
    made = []
    for index in range(runs):
        wobble = 1 + jitter * ((index % 5) - 2) / 2
        started = end - dt.timedelta(days=index + 1, hours=1)
        duration = run_seconds * wobble
        run = PipelineRun.objects.create(
            pipeline=pipeline,
            status="success",
            trigger_type="scheduled",
            started_at=started,
            completed_at=started + dt.timedelta(seconds=duration),
            metrics={"duration_seconds": duration, "rows_moved": rows, "reconciled": True},
            airflow_dag_id=pipeline.dag_id,
            airflow_run_id=f"scheduled__seeded_{index}",
        )
        for step, facts in steps.items():
            seconds = facts["seconds"] * wobble
            TaskRun.objects.create(
                pipeline_run=run,
                pipeline_step=step,
                status="success",
                started_at=started,
                completed_at=started + dt.timedelta(seconds=seconds),
                metrics={
                    "duration_seconds": seconds,
                    "rows_out": facts["rows"],
                    "rows_per_second": facts["rows"] / seconds if seconds else None,
                    "try_number": 1,
                },
            )
        made.append(run)
    return made
