"""task_runs (pipeline_step, run_started_at), built concurrently: one pipeline's task runs over a period.

The task-run list filtered on a pipeline and a date range (bench/dashboard.py: 260 ms for the busiest pipeline's
last week at 5 million task runs, through a hash join of all its runs) reads, with it, the period's rows of the
pipeline's steps in one or two partitions. ``task_runs`` is large and busy: ``AddIndexConcurrently`` builds it
ON ONLY the parent, each partition concurrently, then attaches (docs/migrations.md).
"""

from django.db import migrations, models

from django_etl.migrations_kit.operations import AddIndexConcurrently


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("runs", "0004_task_runs_daily"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="taskrun",
            index=models.Index(fields=["pipeline_step", "run_started_at"], name="task_runs_step_run_idx"),
        ),
    ]
