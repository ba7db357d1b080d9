"""The admin lists alerts by last seen, newest first."""

from __future__ import annotations

from django.db import migrations, models

from django_etl.migrations_kit.operations import AddIndexConcurrently


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY cannot run in a transaction

    dependencies = [("monitoring", "0006_unique_open_alert_condition")]

    operations = [
        AddIndexConcurrently(
            model_name="alert",
            index=models.Index(fields=["-last_seen_at"], name="alerts_last_seen_idx"),
        ),
    ]
