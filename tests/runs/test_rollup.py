"""The daily step rollup: the dashboard's step figures are the same with it, without it, and while it lags."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from django.core.management import call_command
from django.utils import timezone

from django_etl.runs import dashboard, rollup

pytestmark = pytest.mark.django_db


@pytest.fixture
def history(pipeline, make_step):
    """Three days of runs of two steps: 'slow' takes 50 s, 'quick' 5 s and fails once a day."""
    from django_etl.runs.models import PipelineRun, TaskRun

    slow = make_step("slow", "transform", {"sql": "select 1"}, 1)
    quick = make_step("quick", "transform", {"sql": "select 1"}, 2)
    now = timezone.now()
    for days_ago in (0, 1, 2):
        for hour in (1, 5, 9):
            started = now - dt.timedelta(days=days_ago, hours=hour)
            run = PipelineRun.objects.create(pipeline=pipeline, trigger_type="scheduled", started_at=started)
            for step, seconds, status in (
                (slow, 50, "success"),
                (quick, 5, "failed" if hour == 5 else "success"),
            ):
                TaskRun.objects.create(
                    pipeline_run=run,
                    pipeline_step=step,
                    status=status,
                    started_at=started,
                    completed_at=started + dt.timedelta(seconds=seconds),
                )
    return now, {"slow": slow, "quick": quick}


def figures(organization, now):
    since, until = now - dt.timedelta(days=dashboard.WINDOW_DAYS), now + dt.timedelta(seconds=1)
    slowest, failing = dashboard.step_stats(organization, since, until, mark=rollup.computed_until())
    return [(s.step, round(s.value, 3)) for s in slowest], [(s.step, s.value) for s in failing]


def test_step_figures_are_the_same_live_rolled_up_and_in_between(history, organization, pipeline):
    from django_etl.runs.models import PipelineRun, StepDay, TaskRun

    now, steps = history
    live = figures(organization, now)
    assert live == ([("slow", 50.0), ("quick", 5.0)], [("quick", 3)])

    call_command("rollup_runs", stdout=io.StringIO())
    assert StepDay.objects.filter(organization=organization).count() >= 4  # 2 steps x 2-3 UTC days
    assert figures(organization, timezone.now()) == live

    # A run after the rollup's pass: read live, added to the sums.
    started = timezone.now()
    run = PipelineRun.objects.create(pipeline=pipeline, trigger_type="scheduled", started_at=started)
    TaskRun.objects.create(
        pipeline_run=run, pipeline_step=steps["quick"], status="failed", started_at=started
    )
    assert figures(organization, timezone.now())[1] == [("quick", 4)]

    rollup.refresh()  # the next pass sums it; nothing is counted twice
    assert figures(organization, timezone.now())[1] == [("quick", 4)]


def test_rollup_refresh_resums_the_day_before_its_mark_and_drops_old_days(history, organization):
    from django_etl.runs.models import StepDay

    history, _ = history
    first = rollup.refresh(now=history)
    assert len(first["days"]) == rollup.KEEP_DAYS + 1  # no mark yet: the whole kept window
    later = rollup.refresh(now=history + dt.timedelta(hours=1))
    assert later["days"][0] == str((history - dt.timedelta(days=1)).date())
    old = StepDay.objects.filter(organization=organization).first()
    StepDay.objects.filter(pk=old.pk).update(day=history.date() - dt.timedelta(days=60))
    assert rollup.refresh(now=history + dt.timedelta(hours=2))["dropped"] > 0
