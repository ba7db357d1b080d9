"""connectors' initial migration in one piece (squashes 0001_initial and 0002_initial).

0002 added the required organization and creator columns to the table 0001 created, so the pair could not be
walked one step at a time on a database with connectors: going back to 0001 dropped every connector's
organization and creator, and 0002 could not be applied again over those rows (tests/test_migrations.py walks
every migration). New databases apply this one; databases that have 0001 and 0002 already count it as applied.
Once every installation has run 0002, the two replaced files (and this ``replaces``) can go.
"""

import uuid

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    replaces = [("connectors", "0001_initial"), ("connectors", "0002_initial")]

    initial = True

    dependencies = [
        ("core", "0001_initial"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="Credential",
            fields=[
                (
                    "id",
                    models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False),
                ),
                ("name", models.CharField(max_length=255)),
                (
                    "encrypted_data",
                    models.TextField(help_text="Fernet token of the secret JSON; never shown."),
                ),
                (
                    "encryption_key_id",
                    models.CharField(
                        help_text="Id of the key-ring key that encrypted this secret.", max_length=255
                    ),
                ),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("expires_at", models.DateTimeField(blank=True, null=True)),
                (
                    "organization",
                    models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, to="core.organization"),
                ),
            ],
            options={
                "db_table": "credentials",
            },
        ),
        migrations.CreateModel(
            name="Connector",
            fields=[
                (
                    "id",
                    models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False),
                ),
                (
                    "name",
                    models.CharField(
                        help_text="Unique in the organization; steps refer to it by name.", max_length=255
                    ),
                ),
                (
                    "connector_type",
                    models.CharField(
                        choices=[
                            ("database", "Database"),
                            ("api", "API"),
                            ("file", "File"),
                            ("cloud", "Cloud Storage"),
                        ],
                        max_length=50,
                    ),
                ),
                (
                    "config",
                    models.JSONField(
                        help_text="Type-specific settings; see docs/step-config.md. No secrets here."
                    ),
                ),
                ("is_active", models.BooleanField(default=True)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("updated_at", models.DateTimeField(auto_now=True)),
                (
                    "created_by",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT, to=settings.AUTH_USER_MODEL
                    ),
                ),
                (
                    "organization",
                    models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, to="core.organization"),
                ),
                (
                    "credential",
                    models.ForeignKey(
                        blank=True,
                        help_text="Secret used to connect; empty for local files and public APIs.",
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        to="connectors.credential",
                    ),
                ),
            ],
            options={
                "db_table": "connectors",
                "indexes": [
                    models.Index(
                        fields=["organization", "connector_type"], name="connectors_organiz_2f7a85_idx"
                    ),
                    models.Index(fields=["is_active"], name="connectors_is_acti_5ba9ae_idx"),
                ],
                "constraints": [
                    models.UniqueConstraint(
                        fields=("organization", "name"), name="unique_connector_name_per_org"
                    )
                ],
            },
        ),
    ]
