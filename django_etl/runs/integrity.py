"""Find rows that point at task runs which no longer exist (the references have no database constraint)."""

from __future__ import annotations

from django.db.models import Exists, OuterRef


def orphans() -> dict[str, int]:
    """Counts of alerts and lineage edges whose task run is missing; all zero when the ORM did the deletes."""
    from django_etl.lineage.models import DataLineage
    from django_etl.monitoring.models import Alert
    from django_etl.runs.models import TaskRun

    def missing(queryset, field: str) -> int:
        exists = TaskRun.objects.filter(pk=OuterRef(field))
        return queryset.exclude(**{f"{field}__isnull": True}).filter(~Exists(exists)).count()

    return {
        "alerts.task_run": missing(Alert.objects.all(), "task_run_id"),
        "data_lineage.source_task": missing(DataLineage.objects.all(), "source_task_id"),
        "data_lineage.target_task": missing(DataLineage.objects.all(), "target_task_id"),
    }
