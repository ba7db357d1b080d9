"""Alerts stored before the lifecycle columns were last seen when they were created."""

from __future__ import annotations

from django.db import migrations

from django_etl.migrations_kit.chunked import ResumableRunPython, migrate_in_chunks


def fill_last_seen(apps, schema_editor):
    Alert = apps.get_model("monitoring", "Alert")
    alias = schema_editor.connection.alias

    def process(rows):
        for alert in rows:
            alert.last_seen_at = alert.created_at
        Alert.objects.using(alias).bulk_update(rows, ["last_seen_at"])

    migrate_in_chunks(
        Alert.objects.using(alias).filter(last_seen_at__isnull=True),
        process,
        name="monitoring.0005_backfill_alert_last_seen",
        chunk_size=1000,
    )


class Migration(migrations.Migration):
    atomic = False  # each chunk commits on its own

    dependencies = [("monitoring", "0004_alert_lifecycle_fields")]

    operations = [ResumableRunPython(fill_last_seen, migrations.RunPython.noop)]
