"""lineage.0002: task runs stored before issue 17 that never ran lose the start Airflow stamped on them."""

from __future__ import annotations

import importlib
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

pytestmark = pytest.mark.django_db(transaction=True)  # the migration commits chunk by chunk

T0 = datetime(2026, 11, 2, 6, 0, tzinfo=UTC)


def test_never_run_migration_clears_only_tasks_that_never_ran(pipeline, make_step):
    from django.apps import apps
    from django.db import connection

    from django_etl.runs.models import PipelineRun, TaskRun

    migration = importlib.import_module("django_etl.lineage.migrations.0002_never_run_tasks_have_no_start")
    run = PipelineRun.objects.create(pipeline=pipeline, status="failed", started_at=T0, trigger_type="manual")
    steps = [make_step(f"step {n}", "notify", {"email": ["a@example.com"]}, n) for n in range(3)]
    rows = {
        "upstream_failed": ("upstream_failed", 0),
        "skipped_by_itself": ("skipped", 1),  # raised AirflowSkipException: it ran
        "success": ("success", 1),
    }
    made = {}
    for step, (label, (status, try_number)) in zip(steps, rows.items(), strict=True):
        made[label] = TaskRun.objects.create(
            pipeline_run=run,
            pipeline_step=step,
            status=status,
            started_at=T0,
            completed_at=T0,
            metrics={"try_number": try_number},
        )
    migration.clear_start(apps, SimpleNamespace(connection=connection))
    started = {label: TaskRun.objects.get(pk=row.pk).started_at for label, row in made.items()}
    assert started == {"upstream_failed": None, "skipped_by_itself": T0, "success": T0}
