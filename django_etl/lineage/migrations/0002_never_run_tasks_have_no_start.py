"""Clear the start of task runs that never ran: Airflow stamps one on tasks it skips or marks upstream-failed.

Write-back copied it until lineage issue 17 (docs/partitioning.md: such a task never has a ``started_at``);
their durations then misled. It lives with lineage (that issue's data fix) and needs only ``runs.0001``, so the
runs app's own chain stays as it is. A task that never ran was never queued, so its recorded try number is 0; a task
that raised AirflowSkipException did run (try 1 or more) and keeps its start. Going back leaves the rows as they
are: the stamps Airflow invented are not worth restoring.
"""

from __future__ import annotations

from django.db import migrations
from django.db.models import Q

from django_etl.migrations_kit.chunked import ResumableRunPython, migrate_in_chunks

NEVER_RUN = ["skipped", "upstream_failed"]


def clear_start(apps, schema_editor):
    TaskRun = apps.get_model("runs", "TaskRun")
    alias = schema_editor.connection.alias

    def process(rows):
        for task_run in rows:
            task_run.started_at = None
        TaskRun.objects.using(alias).bulk_update(rows, ["started_at"])

    queryset = TaskRun.objects.using(alias).filter(
        Q(metrics__try_number=0) | ~Q(metrics__has_key="try_number"),
        status__in=NEVER_RUN,
        started_at__isnull=False,
    )
    migrate_in_chunks(queryset, process, name="lineage.0002_never_run_tasks_have_no_start")


class Migration(migrations.Migration):
    atomic = False  # each chunk commits on its own (django_etl/migrations_kit/chunked.py)

    dependencies = [
        ("lineage", "0001_initial"),
        ("runs", "0001_initial"),
    ]

    operations = [ResumableRunPython(clear_start, migrations.RunPython.noop)]
