"""Admin for pipelines, with their steps inline, validated together before anything is saved."""

from __future__ import annotations

import functools

from django.contrib import admin, messages
from django.db import router, transaction

from django_etl.control.links import airflow_link
from django_etl.core.tenancy import OrganizationScopedAdmin, ScopedStackedInline
from django_etl.pipelines import step_editor, versioning
from django_etl.pipelines.admin_actions import generate_dag_files, rotate_webhook_secret, run_now
from django_etl.pipelines.forms import PipelineStepForm, StepFormSet
from django_etl.pipelines.models import Pipeline, PipelineStep


class PipelineStepInline(ScopedStackedInline):
    model = PipelineStep
    formset = StepFormSet
    extra = 0
    ordering = ["order_index"]
    fields = [("name", "order_index", "step_type", "is_parallel"), "config", "dependencies", "step_id"]
    readonly_fields = ["step_id"]

    def get_formset(self, request, obj=None, **kwargs):
        # The step editor (step_editor.py) offers the pipeline's own steps, by name, as dependencies.
        kwargs["formfield_callback"] = functools.partial(self.step_formfield, request=request, pipeline=obj)
        return super().get_formset(request, obj, **kwargs)

    def step_formfield(self, db_field, request, pipeline=None, **kwargs):
        return step_editor.formfield(
            db_field, self.formfield_for_dbfield(db_field, request, **kwargs), pipeline
        )

    @admin.display(description="step id (for dependencies)")
    def step_id(self, obj: PipelineStep) -> str:
        return str(obj.pk) if obj.pk and not obj._state.adding else "assigned on save"


@admin.register(Pipeline)
class PipelineAdmin(OrganizationScopedAdmin):
    list_display = ["name", "organization", "status", "version", "step_count", "updated_at"]
    list_filter = ["status", "organization"]
    search_fields = ["name", "description"]
    readonly_fields = ["version", "dag_id", "in_airflow", "created_by", "created_at", "updated_at"]
    fieldsets = [
        (None, {"fields": ["name", "description", "organization", "status"]}),
        ("Configuration", {"fields": ["config", "metadata"]}),
        (
            "Airflow",
            {
                "fields": ["dag_id", "in_airflow", "version", "created_by", "created_at", "updated_at"],
                "classes": ["collapse"],
            },
        ),
    ]
    inlines = [PipelineStepInline]
    change_form_template = "admin/pipelines/pipeline/change_form.html"

    actions: list = [generate_dag_files, run_now, rotate_webhook_secret]

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        # The step editor's schemas (checked as one types) and the steps read as steps (console issue).
        context["etl_step_schemas"] = step_editor.step_schemas()
        context["etl_steps"] = step_editor.steps_at_a_glance(obj) if obj is not None and obj.pk else []
        return super().render_change_form(request, context, add, change, form_url, obj)

    @admin.display(description="Airflow")
    def in_airflow(self, obj: Pipeline):
        return airflow_link(obj.dag_id) if obj.pk else "—"

    def has_run_permission(self, request, obj=None) -> bool:
        """Run now (and the pause state that follows the status): editors and up (docs/security.md)."""
        return self.has_role_permission(request, "run", obj)

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
        from django_etl.control.sync import last_problems

        token = last_problems.set(())
        try:
            with transaction.atomic(using=router.db_for_write(self.model)), versioning.batch():
                response = super().changeform_view(request, *args, **kwargs)
            # The save's regeneration ran on commit; what Airflow could not be told is said here.
            for problem in last_problems.get():
                self.message_user(request, problem, messages.WARNING)
            return response
        finally:
            last_problems.reset(token)

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

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        field = super().formfield_for_dbfield(db_field, request, **kwargs)
        return step_editor.formfield(db_field, field) if db_field.name == "config" else field
