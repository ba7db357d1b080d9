"""Alert (something a person should look at), the rules that route alerts to people, and their deliveries."""

from __future__ import annotations

import uuid

from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from django_etl.connectors.models import Connector
from django_etl.core.models import Organization
from django_etl.monitoring.choices import (
    AlertLevel,
    AlertType,
    DeliveryChannel,
    DeliveryReason,
    DeliveryStatus,
    WebhookFormat,
)
from django_etl.pipelines.models import Pipeline
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


class AlertRule(models.Model):
    """An organization's rule: alerts of these levels, types and pipelines go to these people (routing.py)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="alert_rules")
    name = models.CharField(max_length=100, help_text="Unique in the organization.")
    is_active = models.BooleanField(default=True)
    min_level = models.CharField(
        max_length=20,
        choices=AlertLevel.choices,
        default=AlertLevel.ERROR,
        help_text="Alerts of this level and above.",
    )
    alert_types = models.JSONField(
        default=list, blank=True, help_text="Alert types this rule routes; none chosen: every type."
    )
    pipelines = models.ManyToManyField(
        Pipeline,
        blank=True,
        related_name="alert_rules",
        help_text="Only alerts of these pipelines; none chosen: every alert of the organization, run-less "
        "ones (credentials, compile errors) included.",
    )
    email_recipients = models.TextField(
        blank=True, help_text="Email addresses, separated by commas or new lines (at most 20)."
    )
    webhook_connector = models.ForeignKey(
        Connector,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        limit_choices_to={"connector_type": "api"},
        help_text="An API connector of the organization to POST the alert to (its URL obeys the network policy).",
    )
    webhook_path = models.CharField(
        max_length=500, blank=True, help_text="Path under the connector's base URL (empty: the base URL)."
    )
    webhook_format = models.CharField(
        max_length=10, choices=WebhookFormat.choices, default=WebhookFormat.JSON
    )
    on_escalation = models.BooleanField(
        default=True, help_text="Also tell when an open alert's level rises (a warning becomes an error)."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "alert_rules"
        ordering = ["organization", "name"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "name"], name="unique_alert_rule_name_per_org")
        ]

    def __str__(self) -> str:
        return self.name

    def recipients(self) -> list[str]:
        from django_etl.monitoring.routing import parse_recipients

        return parse_recipients(self.email_recipients)

    def clean(self) -> None:
        from django_etl.monitoring.routing import rule_problems

        problems = rule_problems(self)
        if problems:
            raise ValidationError(problems)


class AlertDelivery(models.Model):
    """One message an alert owes one rule's channel: the outbox row and then its log (routing.py)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="deliveries")
    rule = models.ForeignKey(
        AlertRule, on_delete=models.SET_NULL, null=True, blank=True, related_name="deliveries"
    )
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="alert_deliveries")
    channel = models.CharField(max_length=10, choices=DeliveryChannel.choices)
    reason = models.CharField(max_length=10, choices=DeliveryReason.choices, default=DeliveryReason.NEW)
    level = models.CharField(
        max_length=20, choices=AlertLevel.choices, help_text="The alert's level when queued."
    )
    target = models.CharField(
        max_length=1000, help_text="Recipients, or the connector and path (never a secret)."
    )
    status = models.CharField(max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    last_error = models.TextField(blank=True)
    response = models.CharField(max_length=200, blank=True, help_text="What the receiver answered.")
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "alert_deliveries"
        verbose_name_plural = "alert deliveries"
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="alert_deliveries_due_idx")]
        constraints = [
            # Queued once per alert, rule, channel and reason/level: a repeated hand-over adds nothing.
            models.UniqueConstraint(
                fields=["alert", "rule", "channel", "reason", "level"], name="unique_alert_delivery"
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_channel_display()} to {self.target[:60]} ({self.status})"
