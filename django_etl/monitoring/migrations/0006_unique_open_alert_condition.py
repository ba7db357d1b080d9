"""At most one open alert per condition: what makes concurrent raisers update one alert (lifecycle.py)."""

from __future__ import annotations

from django.db import migrations, models

from django_etl.migrations_kit.operations import AddUniqueConstraintConcurrently


class Migration(migrations.Migration):
    atomic = False  # CREATE UNIQUE INDEX CONCURRENTLY cannot run in a transaction

    dependencies = [("monitoring", "0005_backfill_alert_last_seen")]

    operations = [
        AddUniqueConstraintConcurrently(
            model_name="alert",
            constraint=models.UniqueConstraint(
                condition=models.Q(("is_resolved", False), models.Q(("condition_key", ""), _negated=True)),
                fields=("condition_key",),
                name="unique_open_alert_condition",
            ),
        ),
    ]
