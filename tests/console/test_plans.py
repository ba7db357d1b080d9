"""The dashboard's query plans on PostgreSQL over 100,000 analysed task runs: they read the seed's indexes."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from tests.console.busy import make_busy_organization

pytestmark = pytest.mark.django_db


@pytest.fixture
def busy(root):
    # 10,000 runs over a year, ten steps each: 100,000 task runs, analysed.
    return make_busy_organization(root, pipelines=20, steps=10, runs=10_000, days=365)


def plan(queryset) -> str:
    # QuerySet.explain() cannot wrap a query filtered on a window function: EXPLAIN the compiled SQL instead.
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN {sql}", params)
        return "\n".join(row[0] for row in cursor.fetchall())


def test_dashboard_plans_use_the_dashboard_indexes(busy):
    from django_etl.runs import dashboard
    from django_etl.runs.models import TaskRun

    assert TaskRun.objects.count() >= 100_000
    now = timezone.now()
    since = now - timedelta(days=dashboard.WINDOW_DAYS)
    ids = [pipeline.pk for pipeline in dashboard.pipelines_with_last_run(busy)]
    plans = {
        "last run": plan(dashboard.pipelines_with_last_run_query(busy)),
        "success": plan(dashboard.success_counts(ids, since, now - timedelta(days=7))),
        "trend": plan(dashboard.duration_trend(ids, since)),
        "steps (live)": plan(dashboard.step_live_query(busy, since, now)),
    }
    run_indexes = pipeline_run_indexes()
    for name in ("last run", "success", "trend"):
        assert "Seq Scan on pipeline_runs" not in plans[name], plans[name]
        assert any(index in plans[name] for index in run_indexes), plans[name]
    # Every partition's copy of task_runs_status_run_idx is named <partition>_status_run_idx.
    assert "_status_run_idx" in plans["steps (live)"], plans["steps (live)"]
    assert "Seq Scan on task_runs_default" not in plans["steps (live)"], plans["steps (live)"]


def pipeline_run_indexes() -> list[str]:
    """The seed's indexes led by (pipeline, -started_at): the dashboard index and its shorter twin."""
    from django.db import connection as db

    from django_etl.runs.models import PipelineRun

    names = []
    for index in PipelineRun._meta.indexes:
        if index.fields[:2] == ["pipeline", "-started_at"]:
            names.append(index.name)
    with db.cursor() as cursor:
        cursor.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'pipeline_runs'")
        present = {row[0] for row in cursor.fetchall()}
    assert "pipeline_runs_dashboard_idx" in names and set(names) <= present
    return names
