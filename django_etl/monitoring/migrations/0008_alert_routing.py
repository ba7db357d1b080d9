"""Alert routing (issue 15): the organization's alert rules and the delivery outbox (new tables)."""

import uuid

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("connectors", "0003_organization_policy"),
        ("core", "0001_initial"),
        ("monitoring", "0007_alerts_last_seen_idx"),
        ("pipelines", "0001_initial"),
    ]

    operations = [
        migrations.CreateModel(
            name="AlertRule",
            fields=[
                (
                    "id",
                    models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False),
                ),
                ("name", models.CharField(help_text="Unique in the organization.", max_length=100)),
                ("is_active", models.BooleanField(default=True)),
                (
                    "min_level",
                    models.CharField(
                        choices=[
                            ("info", "Info"),
                            ("warning", "Warning"),
                            ("error", "Error"),
                            ("critical", "Critical"),
                        ],
                        default="error",
                        help_text="Alerts of this level and above.",
                        max_length=20,
                    ),
                ),
                (
                    "alert_types",
                    models.JSONField(
                        blank=True,
                        default=list,
                        help_text="Alert types this rule routes; none chosen: every type.",
                    ),
                ),
                (
                    "email_recipients",
                    models.TextField(
                        blank=True,
                        help_text="Email addresses, separated by commas or new lines (at most 20).",
                    ),
                ),
                (
                    "webhook_path",
                    models.CharField(
                        blank=True,
                        help_text="Path under the connector's base URL (empty: the base URL).",
                        max_length=500,
                    ),
                ),
                (
                    "webhook_format",
                    models.CharField(
                        choices=[("json", "JSON (the alert's fields)"), ("slack", "Slack ({text: …})")],
                        default="json",
                        max_length=10,
                    ),
                ),
                (
                    "on_escalation",
                    models.BooleanField(
                        default=True,
                        help_text="Also tell when an open alert's level rises (a warning becomes an error).",
                    ),
                ),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("updated_at", models.DateTimeField(auto_now=True)),
                (
                    "organization",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="alert_rules",
                        to="core.organization",
                    ),
                ),
                (
                    "pipelines",
                    models.ManyToManyField(
                        blank=True,
                        help_text="Only alerts of these pipelines; none chosen: every alert of the organization, run-less ones (credentials, compile errors) included.",
                        related_name="alert_rules",
                        to="pipelines.pipeline",
                    ),
                ),
                (
                    "webhook_connector",
                    models.ForeignKey(
                        blank=True,
                        help_text="An API connector of the organization to POST the alert to (its URL obeys the network policy).",
                        limit_choices_to={"connector_type": "api"},
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to="connectors.connector",
                    ),
                ),
            ],
            options={
                "db_table": "alert_rules",
                "ordering": ["organization", "name"],
            },
        ),
        migrations.CreateModel(
            name="AlertDelivery",
            fields=[
                (
                    "id",
                    models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False),
                ),
                (
                    "channel",
                    models.CharField(choices=[("email", "Email"), ("webhook", "Webhook")], max_length=10),
                ),
                (
                    "reason",
                    models.CharField(
                        choices=[("new", "New alert"), ("escalated", "Level raised")],
                        default="new",
                        max_length=10,
                    ),
                ),
                (
                    "level",
                    models.CharField(
                        choices=[
                            ("info", "Info"),
                            ("warning", "Warning"),
                            ("error", "Error"),
                            ("critical", "Critical"),
                        ],
                        help_text="The alert's level when queued.",
                        max_length=20,
                    ),
                ),
                (
                    "target",
                    models.CharField(
                        help_text="Recipients, or the connector and path (never a secret).", max_length=1000
                    ),
                ),
                (
                    "status",
                    models.CharField(
                        choices=[
                            ("pending", "Pending"),
                            ("sent", "Sent"),
                            ("failed", "Failed"),
                            ("refused", "Refused"),
                        ],
                        default="pending",
                        max_length=10,
                    ),
                ),
                ("attempts", models.PositiveIntegerField(default=0)),
                ("next_attempt_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("last_error", models.TextField(blank=True)),
                (
                    "response",
                    models.CharField(blank=True, help_text="What the receiver answered.", max_length=200),
                ),
                ("sent_at", models.DateTimeField(blank=True, null=True)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                (
                    "alert",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="deliveries",
                        to="monitoring.alert",
                    ),
                ),
                (
                    "organization",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="alert_deliveries",
                        to="core.organization",
                    ),
                ),
                (
                    "rule",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="deliveries",
                        to="monitoring.alertrule",
                    ),
                ),
            ],
            options={
                "verbose_name_plural": "alert deliveries",
                "db_table": "alert_deliveries",
            },
        ),
        migrations.AddConstraint(
            model_name="alertrule",
            constraint=models.UniqueConstraint(
                fields=("organization", "name"), name="unique_alert_rule_name_per_org"
            ),
        ),
        migrations.AddIndex(
            model_name="alertdelivery",
            index=models.Index(fields=["status", "next_attempt_at"], name="alert_deliveries_due_idx"),
        ),
        migrations.AddConstraint(
            model_name="alertdelivery",
            constraint=models.UniqueConstraint(
                fields=("alert", "rule", "channel", "reason", "level"), name="unique_alert_delivery"
            ),
        ),
    ]
