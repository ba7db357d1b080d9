"""task_runs is range-partitioned by month on PostgreSQL; manage_partitions keeps the default partition empty."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.core.management import call_command
from django.db import connection

from django_etl.runs import partitioning

pytestmark = [pytest.mark.django_db, pytest.mark.integration]


def partition_of(task_run_id) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT tableoid::regclass::text FROM task_runs WHERE id = %s", [task_run_id])
        return cursor.fetchone()[0]


@pytest.fixture
def make_task_run(pipeline, make_step):
    from django_etl.runs.models import PipelineRun, TaskRun

    step = make_step("only", "notify", {"email": ["a@b.io"]}, 1)

    def make(started_at: dt.datetime) -> TaskRun:
        run = PipelineRun.objects.create(pipeline=pipeline, trigger_type="scheduled", started_at=started_at)
        return TaskRun.objects.create(pipeline_run=run, pipeline_step=step)

    return make


def test_task_runs_table_is_partitioned_with_months_ahead():
    with connection.cursor() as cursor:
        cursor.execute("SELECT partstrat FROM pg_partitioned_table WHERE partrelid = 'task_runs'::regclass")
        assert cursor.fetchone() == ("r",)
    this_month = partitioning.month_start(dt.datetime.now(dt.UTC))
    present = partitioning.existing_partitions(connection)
    for ahead in range(4):
        assert partitioning.partition_name(partitioning.add_months(this_month, ahead)) in present
    assert "task_runs_default" in present


def test_task_run_lands_in_its_month_partition(make_task_run):
    now = dt.datetime.now(dt.UTC)
    task_run = make_task_run(now)
    assert task_run.run_started_at == task_run.pipeline_run.started_at
    assert partition_of(task_run.pk) == partitioning.partition_name(partitioning.month_start(now))


def test_manage_partitions_empties_default_partition(make_task_run, capsys):
    old = make_task_run(dt.datetime(2019, 3, 14, 12, 0, tzinfo=dt.UTC))
    older = make_task_run(dt.datetime(2018, 7, 1, 0, 0, tzinfo=dt.UTC))
    assert partition_of(old.pk) == "task_runs_default"
    assert partitioning.default_partition_rows() == 2

    call_command("manage_partitions")
    assert partitioning.default_partition_rows() == 0
    assert partition_of(old.pk) == "task_runs_y2019m03"
    assert partition_of(older.pk) == "task_runs_y2018m07"
    assert "2 row(s) moved" in capsys.readouterr().out

    call_command("manage_partitions")  # again: nothing to do, nothing breaks
    assert "0 created" in capsys.readouterr().out

    from django_etl.runs.models import TaskRun

    assert TaskRun.objects.get(pk=old.pk).pipeline_step.name == "only"  # ORM reads are unchanged


def test_orm_cascade_deletes_alerts_and_lineage_without_db_constraint(make_task_run):
    from django_etl.lineage.models import DataLineage
    from django_etl.monitoring.models import Alert
    from django_etl.runs.integrity import orphans

    now = dt.datetime.now(dt.UTC)
    source, target = make_task_run(now), make_task_run(now)
    Alert.objects.create(task_run=source, level="error", alert_type="task_failed", message="boom")
    DataLineage.objects.create(source_task=source, target_task=target, relationship_type="direct")
    source.pipeline_run.delete()
    assert Alert.objects.count() == 0 and DataLineage.objects.count() == 0
    assert sum(orphans().values()) == 0


def scanned_partitions(sql: str, params) -> set[str]:
    """The task_runs partitions in a query's plan (EXPLAIN's relation names)."""
    import json

    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        plan = cursor.fetchone()[0]
    plan = json.loads(plan) if isinstance(plan, str) else plan
    found, stack = set(), [plan[0]["Plan"]]
    while stack:
        node = stack.pop()
        if re.fullmatch(r"task_runs_(y\d{4}m\d{2}|default)", str(node.get("Relation Name", ""))):
            found.add(node["Relation Name"])
        stack.extend(node.get("Plans", []))
    return found


def test_console_window_queries_prune_to_the_window_months(make_task_run, organization):
    from django.utils import timezone

    from django_etl.runs import dashboard

    now = timezone.now()
    for days_ago in (1, 20, 45, 80, 110, 140):  # six months of rows, then their partitions and statistics
        for _ in range(3):
            make_task_run(now - dt.timedelta(days=days_ago))
    partitioning.ensure_partitions(connection)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE task_runs")
    assert partitioning.default_partition_rows() == 0
    since = now - dt.timedelta(days=dashboard.WINDOW_DAYS)
    window = {partitioning.partition_name(partitioning.month_start(d)) for d in (since, now)}
    for query in (dashboard.step_live_query(organization, since, now),):
        scanned = scanned_partitions(*query.query.sql_with_params())
        assert scanned == window and len(scanned) <= 2, scanned  # neither older months nor the default
