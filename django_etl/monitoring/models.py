"""Alert: something about a run, or about an organization's credential, that a person should look at."""

from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone

from django_etl.core.models import Organization
from django_etl.monitoring.choices import AlertLevel, AlertType
from django_etl.runs.models import PipelineRun, TaskRun


class AlertQuerySet(models.QuerySet["Alert"]):
    def unresolved(self) -> AlertQuerySet:
        return self.filter(is_resolved=False)

    def resolve(self) -> int:
        return self.filter(is_resolved=False).update(is_resolved=True, resolved_at=timezone.now())


class Alert(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    pipeline_run = models.ForeignKey(PipelineRun, on_delete=models.CASCADE, null=True)
    # No database constraint: task_runs is partitioned, so its primary key includes the partition key
    # (docs/partitioning.md). Deletes cascade through the ORM; check_orphans finds strays.
    task_run = models.ForeignKey(TaskRun, on_delete=models.CASCADE, null=True, db_constraint=False)
    # A deviation from the seed (docs/data-model.md): the organization the alert concerns, filled for every
    # alert (from the run's pipeline, or the credential's organization for a run-less alert), so the admin
    # scopes all alerts alike. Nullable only so that rows stored before it could be back-filled.
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, null=True, blank=True, related_name="alerts"
    )
    level = models.CharField(max_length=20, choices=AlertLevel.choices)
    alert_type = models.CharField(max_length=50, choices=AlertType.choices)
    message = models.TextField()
    metadata = models.JSONField(default=dict, blank=True)
    is_resolved = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    # Additions to the seed (docs/data-model.md): the lifecycle of one problem (monitoring/lifecycle.py).
    # Columns, not metadata keys: the admin sorts by last seen, and at most one open alert per condition is a
    # partial unique index (what makes concurrent raisers update one alert instead of adding two).
    condition_key = models.CharField(
        max_length=255,
        blank=True,
        default="",
        help_text="The problem this alert is about (type, pipeline, step, …): while it is open, the same "
        "condition updates it instead of adding an alert.",
    )
    occurrences = models.PositiveIntegerField(default=1, help_text="How many times the condition was seen.")
    last_seen_at = models.DateTimeField(
        null=True, blank=True, help_text="When the condition was last seen (the creation for older alerts)."
    )

    objects = AlertQuerySet.as_manager()

    class Meta:
        db_table = "alerts"
        indexes = [
            models.Index(fields=["level", "-created_at"]),
            models.Index(fields=["is_resolved"]),
            models.Index(fields=["alert_type"]),
            models.Index(fields=["-last_seen_at"], name="alerts_last_seen_idx"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["condition_key"],
                condition=models.Q(is_resolved=False) & ~models.Q(condition_key=""),
                name="unique_open_alert_condition",
            ),
        ]

    def __str__(self) -> str:
        return f"[{self.level}] {self.get_alert_type_display()}: {self.message[:80]}"

    def save(self, *args, **kwargs) -> None:
        if self.last_seen_at is None:
            self.last_seen_at = timezone.now()
        # Whoever creates an alert for a run, it names the run's organization (bulk_create excepted).
        if self.organization_id is None and self.pipeline_run_id is not None:
            self.organization_id = (
                PipelineRun.objects.using(kwargs.get("using") or self._state.db or "default")
                .filter(pk=self.pipeline_run_id)
                .values_list("pipeline__organization_id", flat=True)
                .first()
            )
        super().save(*args, **kwargs)

    def resolve(self) -> None:
        if not self.is_resolved:
            self.is_resolved = True
            self.resolved_at = timezone.now()
            self.save(update_fields=["is_resolved", "resolved_at"])
