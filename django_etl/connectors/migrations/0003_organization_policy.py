"""Organization policies: the network and file openings a superuser grants one organization (docs/security.md)."""

import uuid

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("connectors", "0001_squashed_0002_initial"),
        ("core", "0001_initial"),
    ]

    operations = [
        migrations.CreateModel(
            name="OrganizationPolicy",
            fields=[
                (
                    "id",
                    models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False),
                ),
                (
                    "allowed_networks",
                    models.JSONField(
                        blank=True,
                        default=list,
                        help_text='Networks or address[:port] its connectors may reach beyond public addresses, e.g. ["10.20.0.0/16", "127.0.0.1:9000"]. Names are not accepted.',
                    ),
                ),
                (
                    "file_roots",
                    models.JSONField(
                        blank=True,
                        default=list,
                        help_text="Absolute folders its file and SQLite connectors may use instead of ETL_FILE_ROOTS; no other organization may use them. Empty: ETL_FILE_ROOTS.",
                    ),
                ),
                ("note", models.TextField(blank=True, help_text="Why this organization has these openings.")),
                ("updated_at", models.DateTimeField(auto_now=True)),
                (
                    "organization",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="connector_policy",
                        to="core.organization",
                    ),
                ),
            ],
            options={
                "verbose_name": "organization policy",
                "verbose_name_plural": "organization policies",
                "db_table": "organization_policies",
            },
        ),
    ]
