"""Read-only admin for data lineage edges."""

from __future__ import annotations

from django.contrib import admin

from django_etl.core.tenancy import ReadOnlyAdmin
from django_etl.lineage.models import DataLineage


@admin.register(DataLineage)
class DataLineageAdmin(ReadOnlyAdmin):
    organization_path = "source_task__pipeline_run__pipeline__organization"
    list_display = ["created_at", "source_task", "target_task", "relationship_type", "pipeline_run"]
    list_filter = ["relationship_type"]
    list_select_related = [
        "source_task__pipeline_step",
        "target_task__pipeline_step",
        "target_task__pipeline_run__pipeline",
    ]
    ordering = ["-created_at"]  # newest first (the console issue)

    @admin.display(description="run")
    def pipeline_run(self, obj: DataLineage):
        return obj.target_task.pipeline_run
