"""Alert lifecycle columns (issue 15): condition_key, occurrences, last_seen_at.

Quick on a large table: PostgreSQL 11+ adds a column with a constant default (or none) without rewriting
rows. The back-fill of last_seen_at and the two indexes follow in their own migrations (docs/migrations.md).
"""

from __future__ import annotations

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("monitoring", "0003_backfill_alert_organization")]

    operations = [
        migrations.AddField(
            model_name="alert",
            name="condition_key",
            field=models.CharField(
                blank=True,
                default="",
                help_text="The problem this alert is about (type, pipeline, step, …): while it is open, the "
                "same condition updates it instead of adding an alert.",
                max_length=255,
            ),
        ),
        migrations.AddField(
            model_name="alert",
            name="occurrences",
            field=models.PositiveIntegerField(default=1, help_text="How many times the condition was seen."),
        ),
        migrations.AddField(
            model_name="alert",
            name="last_seen_at",
            field=models.DateTimeField(
                blank=True,
                help_text="When the condition was last seen (the creation for older alerts).",
                null=True,
            ),
        ),
    ]
