"""The alert choices (seed section 5), importable without loading models."""

from __future__ import annotations

from django.db import models


class AlertLevel(models.TextChoices):
    INFO = "info", "Info"
    WARNING = "warning", "Warning"
    ERROR = "error", "Error"
    CRITICAL = "critical", "Critical"


class AlertType(models.TextChoices):
    TASK_FAILED = "task_failed", "Task Failed"
    PIPELINE_FAILED = "pipeline_failed", "Pipeline Failed"
    PERFORMANCE_DEGRADATION = "performance_degradation", "Performance Degradation"
    RESOURCE_EXHAUSTION = "resource_exhaustion", "Resource Exhaustion"
    DATA_QUALITY = "data_quality", "Data Quality"
    CREDENTIAL_EXPIRING = "credential_expiring", "Credential Expiring"


class DeliveryChannel(models.TextChoices):
    EMAIL = "email", "Email"
    WEBHOOK = "webhook", "Webhook"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"  # waiting for its (next) attempt
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"  # every attempt failed
    REFUSED = "refused", "Refused"  # never tried again: the network policy or the rule's setup refuses it


class DeliveryReason(models.TextChoices):
    NEW = "new", "New alert"
    ESCALATED = "escalated", "Level raised"


class WebhookFormat(models.TextChoices):
    JSON = "json", "JSON (the alert's fields)"
    SLACK = "slack", "Slack ({text: …})"
