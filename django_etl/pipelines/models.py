"""Pipeline and PipelineStep (seed section 3): the configuration that compiles into one Airflow DAG."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

from django_etl.core.models import Organization
from django_etl.pipelines import versioning
from django_etl.pipelines.choices import DEPLOYED_STATUSES, PipelineStatus, StepType
from django_etl.pipelines.naming import dag_id_for, task_id_for


class PipelineQuerySet(models.QuerySet["Pipeline"]):
    def deployed(self) -> PipelineQuerySet:
        """Pipelines that have a DAG file."""
        return self.filter(status__in=DEPLOYED_STATUSES)


class Pipeline(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=255)
    description = models.TextField(blank=True)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT)
    config = models.JSONField(
        help_text="Scheduling and defaults: schedule, start_date, retries, timeouts… (docs/dag-mapping.md)."
    )
    status = models.CharField(max_length=20, choices=PipelineStatus.choices)
    metadata = models.JSONField(default=dict, blank=True, help_text='Tags, categories…: {"tags": ["sales"]}.')
    version = models.CharField(
        max_length=50, default="1.0.0", help_text="Bumped on every change to the config or the steps."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = PipelineQuerySet.as_manager()

    class Meta:
        db_table = "pipelines"
        indexes = [
            models.Index(fields=["organization", "status"]),
            models.Index(fields=["created_by"]),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def dag_id(self) -> str:
        return dag_id_for(self.id)

    @property
    def is_deployed(self) -> bool:
        return self.status in DEPLOYED_STATUSES

    def clean(self) -> None:
        from django_etl.pipelines.validation import validate_pipeline_config

        report = validate_pipeline_config(self)
        if report:
            raise ValidationError(report.as_django_dict())

    def save(self, *args, **kwargs) -> None:
        if self._state.adding:
            versioning.note_created(self)
        elif versioning.should_bump_on_save(self):
            self.version = versioning.next_patch(self.version)
        super().save(*args, **kwargs)

    def bump_version(self) -> None:
        """Record that the steps changed: a new patch version, saved at once (or once per batch)."""
        versioning.record_step_change(self)


class PipelineStep(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    pipeline = models.ForeignKey(Pipeline, on_delete=models.CASCADE, related_name="steps")
    name = models.CharField(max_length=255, help_text="Unique in the pipeline; becomes the Airflow task id.")
    order_index = models.PositiveIntegerField()
    step_type = models.CharField(max_length=50, choices=StepType.choices)
    config = models.JSONField(help_text="Type-specific settings; see docs/step-config.md.")
    dependencies = models.JSONField(
        default=list, blank=True, help_text="Ids of the steps of this pipeline that must finish first."
    )
    is_parallel = models.BooleanField(
        default=False, help_text="Run alongside the previous step instead of after it."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "pipeline_steps"
        ordering = ["order_index"]
        indexes = [
            models.Index(fields=["pipeline", "order_index"]),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["pipeline", "order_index"],
                name="unique_step_order_per_pipeline",
                deferrable=models.Deferrable.DEFERRED,
            )
        ]

    def __str__(self) -> str:
        return f"{self.order_index}. {self.name} ({self.get_step_type_display()})"

    @property
    def task_id(self) -> str:
        return task_id_for(self.name)

    def clean(self) -> None:
        from django_etl.pipelines.validation import validate_step

        report = validate_step(self)
        if report:
            raise ValidationError(report.as_django_dict())

    def save(self, *args, **kwargs) -> None:
        changed = self._state.adding or versioning.step_changed(self)
        super().save(*args, **kwargs)
        if changed:
            self.pipeline.bump_version()

    def delete(self, *args, **kwargs):
        pipeline = self.pipeline
        result = super().delete(*args, **kwargs)
        pipeline.bump_version()
        return result
