"""The daily rollup of task runs per step (``task_runs_daily``): what the dashboard's step statistics read.

Averaging a month of an organization's task runs is ~100,000 rows for a busy one (bench/dashboard.py); summed per
step and UTC day (by the run's start, the partition key) it is a few thousand. :func:`refresh` (the etl_run_rollups
job, every 10 minutes by default) recomputes every day from the day before its last mark up to now, one
transaction per day, and moves the mark (``task_runs_daily_mark``) to the moment it started; the dashboard adds
the task runs of runs started since the mark, read live (a few minutes of them), so its figures are whole even
when the job is late or was never scheduled (then everything is read live, as before the rollup). A task run
that changes after its day was summed (a run still going at the mark) is counted when the next refresh sums that
day again: the step statistics lag by at most one job interval for such runs.
"""

from __future__ import annotations

import datetime as dt

from django.db import connections, transaction
from django.utils import timezone

from django_etl.runs.choices import RunStatus
from django_etl.runs.models import RollupMark, StepDay

MARK = "task_runs_daily"
KEEP_DAYS = 40  # the dashboard reads 30; a few more so a late job never leaves a hole


def computed_until(using: str = "default") -> dt.datetime | None:
    return RollupMark.objects.using(using).filter(name=MARK).values_list("computed_until", flat=True).first()


def refresh(*, now: dt.datetime | None = None, database: str = "default", progress=None) -> dict:
    """Sum the days since the last mark (the day before it included) again; drop days older than KEEP_DAYS."""
    now = now or timezone.now()
    mark = computed_until(database)
    first = (mark - dt.timedelta(days=1)).date() if mark else (now - dt.timedelta(days=KEEP_DAYS)).date()
    first = max(first, (now - dt.timedelta(days=KEEP_DAYS)).date())
    days = [first + dt.timedelta(days=n) for n in range((now.date() - first).days + 1)]
    rows = 0
    for day in days:
        rows += refresh_day(day, until=now, database=database)
        if progress:
            progress(f"task_runs_daily {day}: summed")
    with transaction.atomic(using=database):
        RollupMark.objects.using(database).update_or_create(name=MARK, defaults={"computed_until": now})
        dropped, _ = (
            StepDay.objects.using(database).filter(day__lt=now.date() - dt.timedelta(days=KEEP_DAYS)).delete()
        )
    return {
        "days": [str(day) for day in days],
        "rows": rows,
        "dropped": dropped,
        "computed_until": now.isoformat(),
    }


def refresh_day(day: dt.date, *, until: dt.datetime, database: str = "default") -> int:
    """Replace ``day``'s rows by the sums of its task runs whose run started before ``until``."""
    lower = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
    upper = min(lower + dt.timedelta(days=1), until)
    timed = "t.started_at IS NOT NULL AND t.completed_at IS NOT NULL"
    with transaction.atomic(using=database), connections[database].cursor() as cursor:
        cursor.execute(f'DELETE FROM "{StepDay._meta.db_table}" WHERE day = %s', [day])
        cursor.execute(
            f"""
            INSERT INTO "{StepDay._meta.db_table}"
                (pipeline_step_id, pipeline_id, organization_id, day, succeeded, failed, timed, success_seconds)
            SELECT t.pipeline_step_id, s.pipeline_id, p.organization_id, %s,
                   count(*) FILTER (WHERE t.status = %s),
                   count(*) FILTER (WHERE t.status = %s),
                   count(*) FILTER (WHERE t.status = %s AND {timed}),
                   coalesce(sum(extract(epoch FROM t.completed_at - t.started_at))
                            FILTER (WHERE t.status = %s AND {timed}), 0)
            FROM task_runs t
            JOIN pipeline_steps s ON s.id = t.pipeline_step_id
            JOIN pipelines p ON p.id = s.pipeline_id
            WHERE t.run_started_at >= %s AND t.run_started_at < %s AND t.status IN (%s, %s)
            GROUP BY t.pipeline_step_id, s.pipeline_id, p.organization_id
            """,
            [
                day,
                RunStatus.SUCCESS,
                RunStatus.FAILED,
                RunStatus.SUCCESS,
                RunStatus.SUCCESS,
                lower,
                upper,
                RunStatus.SUCCESS,
                RunStatus.FAILED,
            ],
        )
        return cursor.rowcount
