"""task_runs (status, run_started_at), built concurrently: the dashboards' failing and active task runs by period.

The console's "most failing steps" and "active task runs" ask for task runs of one status over recent months;
with ``run_started_at`` second, PostgreSQL prunes to the months asked for and reads only that status there.
``task_runs`` is large and written all the time, so the index is built without blocking writes
(``AddIndexConcurrently``: ON ONLY the parent, each partition concurrently, then attached); that needs a
migration outside a transaction, with nothing else in it.
"""

from django.db import migrations, models

from django_etl.migrations_kit.operations import AddIndexConcurrently


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("runs", "0001_initial"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="taskrun",
            index=models.Index(fields=["status", "run_started_at"], name="task_runs_status_run_idx"),
        ),
    ]
