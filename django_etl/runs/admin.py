"""Read-only admin for pipeline runs and task runs: Airflow writes them, people browse them."""

from __future__ import annotations

from django.contrib import admin

from django_etl.core.tenancy import ReadOnlyAdmin, ScopedTabularInline
from django_etl.runs.models import PipelineRun, TaskRun


class TaskRunInline(ScopedTabularInline):
    model = TaskRun
    extra = 0
    can_delete = False
    show_change_link = True
    fields = ["pipeline_step", "status", "started_at", "completed_at", "retry_count", "rows_out"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="rows out")
    def rows_out(self, obj: TaskRun):
        return (obj.metrics or {}).get("rows_out", "-")


@admin.register(PipelineRun)
class PipelineRunAdmin(ReadOnlyAdmin):
    organization_path = "pipeline__organization"
    list_display = ["pipeline", "status", "trigger_type", "started_at", "duration", "triggered_by"]
    list_filter = ["status", "trigger_type", "pipeline__organization", "pipeline"]
    search_fields = ["pipeline__name", "airflow_run_id"]
    date_hierarchy = "started_at"
    list_select_related = ["pipeline", "triggered_by"]
    inlines = [TaskRunInline]


@admin.register(TaskRun)
class TaskRunAdmin(ReadOnlyAdmin):
    organization_path = "pipeline_run__pipeline__organization"
    list_display = ["pipeline_step", "pipeline_run", "status", "started_at", "duration", "retry_count"]
    list_filter = ["status", "pipeline_step__step_type"]
    search_fields = ["pipeline_step__name", "pipeline_run__pipeline__name"]
    list_select_related = ["pipeline_step", "pipeline_run__pipeline"]
    exclude = ["run_started_at"]
