"""Admin for pipelines, with their steps inline, validated together before anything is saved."""

from __future__ import annotations

from django.contrib import admin
from django.db import router, transaction

from django_etl.core.tenancy import OrganizationScopedAdmin, ScopedStackedInline
from django_etl.pipelines import versioning
from django_etl.pipelines.admin_actions import generate_dag_files
from django_etl.pipelines.forms import PipelineStepForm, StepFormSet
from django_etl.pipelines.models import Pipeline, PipelineStep


class PipelineStepInline(ScopedStackedInline):
    model = PipelineStep
    formset = StepFormSet
    extra = 0
    ordering = ["order_index"]
    fields = [("name", "order_index", "step_type", "is_parallel"), "config", "dependencies", "step_id"]
    readonly_fields = ["step_id"]

    @admin.display(description="step id (for dependencies)")
    def step_id(self, obj: PipelineStep) -> str:
        return str(obj.pk) if obj.pk and not obj._state.adding else "assigned on save"


@admin.register(Pipeline)
class PipelineAdmin(OrganizationScopedAdmin):
    list_display = ["name", "organization", "status", "version", "step_count", "updated_at"]
    list_filter = ["status", "organization"]
    search_fields = ["name", "description"]
    readonly_fields = ["version", "dag_id", "created_by", "created_at", "updated_at"]
    fieldsets = [
        (None, {"fields": ["name", "description", "organization", "status"]}),
        ("Configuration", {"fields": ["config", "metadata"]}),
        ("Airflow", {"fields": ["dag_id", "version", "created_by", "created_at", "updated_at"]}),
    ]
    inlines = [PipelineStepInline]
    actions: list = [generate_dag_files]

    @admin.display(description="steps")
    def step_count(self, obj: Pipeline) -> int:
        return obj.steps.count()

    @admin.display(description="Airflow DAG id")
    def dag_id(self, obj: Pipeline) -> str:
        return obj.dag_id if obj.pk else "-"

    def changeform_view(self, request, *args, **kwargs):
        # One admin save of a pipeline and its steps is one new version, not one per step.
        # The transaction encloses the batch so the version bump is committed with the edit, and the DAG file
        # regenerated on commit (pipelines/signals.py) carries the new version.
        with transaction.atomic(using=router.db_for_write(self.model)), versioning.batch():
            return super().changeform_view(request, *args, **kwargs)

    def save_model(self, request, obj: Pipeline, form, change: bool) -> None:
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)


@admin.register(PipelineStep)
class PipelineStepAdmin(OrganizationScopedAdmin):
    organization_path = "pipeline__organization"
    list_display = ["name", "pipeline", "order_index", "step_type", "is_parallel"]
    list_filter = ["step_type", "pipeline__organization"]
    search_fields = ["name", "pipeline__name"]
    form = PipelineStepForm
    readonly_fields = ["created_at"]
