"""Read-only admin for pipeline runs and task runs: Airflow writes them, people browse them."""

from __future__ import annotations

from django.contrib import admin

from django_etl.control.links import airflow_link, task_id_of
from django_etl.core.tenancy import ReadOnlyAdmin
from django_etl.pipelines.admin_actions import rerun_failed_tasks
from django_etl.runs import console, display
from django_etl.runs.admin_filters import OrganizationFilter, PipelineFilter, RunStartFilter, scoped_filter
from django_etl.runs.models import PipelineRun, TaskRun

# The organization dashboard on the admin's home page (core/tenancy.py's TenantAdminSite.index).
_home_sections = getattr(admin.site, "index_sections", None)
if _home_sections is not None and console.dashboard_context not in _home_sections:
    _home_sections.append(console.dashboard_context)


@admin.register(PipelineRun)
class PipelineRunAdmin(ReadOnlyAdmin):
    organization_path = "pipeline__organization"
    list_display = [
        "started_at",
        "pipeline",
        "status_badge",
        "trigger_type",
        "triggered_by",
        "took",
        "rows",
        "in_airflow",
    ]
    actions = [rerun_failed_tasks]
    list_display_links = ["started_at"]
    show_full_result_count = False  # one count of the runs per page, not two (bench/console.py)
    list_filter = [
        "status",
        "trigger_type",
        scoped_filter(OrganizationFilter, "pipeline__organization_id", PipelineRun._meta),
        scoped_filter(PipelineFilter, "pipeline_id", PipelineRun._meta),
    ]
    search_fields = ["pipeline__name", "airflow_run_id"]
    date_hierarchy = "started_at"
    ordering = ["-started_at"]
    list_select_related = ["pipeline", "triggered_by"]
    change_form_template = "admin/runs/pipelinerun/change_form.html"
    fieldsets = [
        (
            None,
            {
                "fields": [
                    ("pipeline", "status_badge"),
                    ("trigger_type", "triggered_by"),
                    ("started_at", "completed_at", "took"),
                ]
            },
        ),
        ("Airflow", {"fields": ["airflow_dag_id", "airflow_run_id", "in_airflow"]}),
        ("Metrics", {"fields": ["metrics_fields"]}),
        ("Context", {"fields": ["context_fields"], "classes": ["collapse"]}),
    ]
    readonly_fields = ["status_badge", "took", "metrics_fields", "context_fields", "in_airflow"]

    @admin.display(description="Airflow")
    def in_airflow(self, obj: PipelineRun):
        return airflow_link(obj.airflow_dag_id, obj.airflow_run_id)

    def has_run_permission(self, request, obj=None) -> bool:
        """Re-running a run's failed tasks: editors and up (runs.run_pipelinerun, docs/security.md)."""
        return self.has_role_permission(request, "run", obj)

    @admin.display(description="status", ordering="status")
    def status_badge(self, obj: PipelineRun):
        return display.status_badge(obj.status)

    @admin.display(description="duration")
    def took(self, obj: PipelineRun) -> str:
        return display.readable_duration(obj.duration)

    @admin.display(description="rows extracted → loaded")
    def rows(self, obj: PipelineRun) -> str:
        metrics = obj.metrics or {}
        if "rows_extracted" not in metrics and "rows_loaded" not in metrics:
            return "—"
        return f"{metrics.get('rows_extracted', 0):,} → {metrics.get('rows_loaded', 0):,}"

    @admin.display(description="metrics")
    def metrics_fields(self, obj: PipelineRun):
        return display.fields(obj.metrics)

    @admin.display(description="context")
    def context_fields(self, obj: PipelineRun):
        return display.fields(obj.context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra = dict(extra_context or {})
        run = self.get_object(request, object_id)  # 404 outside the user's organizations (tenancy)
        extra.update(console.run_page_context(run))
        return super().change_view(request, object_id, form_url, extra)


@admin.register(TaskRun)
class TaskRunAdmin(ReadOnlyAdmin):
    organization_path = "pipeline_run__pipeline__organization"
    list_display = [
        "pipeline_step",
        "pipeline_run",
        "status_badge",
        "started_at",
        "took",
        "retry_count",
        "rows",
        "in_airflow",
    ]
    # The date filter is on the run's start, the partition key: "past 7 days" reads one or two partitions.
    list_filter = [
        "status",
        "pipeline_step__step_type",
        scoped_filter(PipelineFilter, "pipeline_run__pipeline_id", TaskRun._meta),
        ("run_started_at", RunStartFilter),
    ]
    search_fields = ["pipeline_step__name", "pipeline_run__pipeline__name"]
    ordering = ["-started_at"]
    # One pipeline's task runs: newest runs first, each run's tasks in step order. PostgreSQL then walks that
    # pipeline's newest runs in (pipeline, -started_at) and stops after a page, where "-started_at" would sort
    # every task run of the period (bench/dashboard.py). Unfiltered, the task runs' own started_at index serves.
    pipeline_ordering = ["-pipeline_run__started_at", "pipeline_step__order_index", "pipeline_step__name"]
    show_full_result_count = False  # counting 100,000 task runs twice per page is most of its time
    list_per_page = 50  # ten runs' worth of tasks; rendering the rows is the other half of the page's time
    list_select_related = ["pipeline_step", "pipeline_run__pipeline"]
    change_form_template = "admin/runs/taskrun/change_form.html"
    fieldsets = [
        (
            None,
            {
                "fields": [
                    ("pipeline_run", "pipeline_step"),
                    ("status_badge", "retry_count"),
                    ("started_at", "completed_at", "took"),
                ]
            },
        ),
        ("Data", {"fields": ["input_fields", "output_fields", "metrics_fields"]}),
        ("Airflow", {"fields": ["in_airflow"]}),
    ]
    readonly_fields = [
        "status_badge",
        "took",
        "input_fields",
        "output_fields",
        "metrics_fields",
        "in_airflow",
    ]

    def get_ordering(self, request):
        if request.GET.get(PipelineFilter.parameter_name):
            return self.pipeline_ordering
        return super().get_ordering(request)

    @admin.display(description="Airflow")
    def in_airflow(self, obj: TaskRun):
        run = obj.pipeline_run
        return airflow_link(run.airflow_dag_id, run.airflow_run_id, task_id_of(obj))

    @admin.display(description="status", ordering="status")
    def status_badge(self, obj: TaskRun):
        return display.status_badge(obj.status)

    @admin.display(description="duration")
    def took(self, obj: TaskRun) -> str:
        return display.readable_duration(obj.duration)

    @admin.display(description="rows in → out")
    def rows(self, obj: TaskRun) -> str:
        metrics = obj.metrics or {}
        return f"{metrics.get('rows_in', '—')} → {metrics.get('rows_out', '—')}"

    @admin.display(description="inputs")
    def input_fields(self, obj: TaskRun):
        return display.fields(obj.input_data)

    @admin.display(description="outputs")
    def output_fields(self, obj: TaskRun):
        return display.fields(obj.output_data)

    @admin.display(description="metrics")
    def metrics_fields(self, obj: TaskRun):
        return display.fields(obj.metrics)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra = dict(extra_context or {})
        task_run = self.get_object(request, object_id)  # 404 outside the user's organizations (tenancy)
        extra.update(console.task_page_context(task_run))
        return super().change_view(request, object_id, form_url, extra)
