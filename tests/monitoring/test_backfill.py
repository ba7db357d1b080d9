"""monitoring.0003 fills Alert.organization of stored alerts from their run's pipeline, and reverses."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def migrate_to(target):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate([target])


def latest_monitoring_migration():
    """Where the session's database must be left: the app's newest migration, not 0003."""
    return MigrationExecutor(connection).loader.graph.leaf_nodes("monitoring")[0]


def test_backfill_fills_and_reverse_clears_alert_organization(pipeline, organization):
    from django_etl.monitoring.models import Alert
    from django_etl.runs.models import PipelineRun

    run = PipelineRun.objects.create(pipeline=pipeline, trigger_type="manual", status="failed")
    Alert.objects.bulk_create(  # bulk_create skips save(): the rows stored before the column was filled
        [Alert(pipeline_run=run, level="error", alert_type="task_failed", message=f"m{i}") for i in range(3)]
    )
    assert Alert.objects.filter(organization__isnull=True).count() == 3
    try:
        migrate_to(("monitoring", "0002_alert_organization"))
        migrate_to(("monitoring", "0003_backfill_alert_organization"))
        assert set(Alert.objects.values_list("organization_id", flat=True)) == {organization.pk}
        migrate_to(("monitoring", "0002_alert_organization"))
        assert Alert.objects.filter(organization__isnull=True).count() == 3
    finally:
        migrate_to(latest_monitoring_migration())


def test_backfill_last_seen_is_the_creation_of_older_alerts(organization):
    from django_etl.monitoring.models import Alert

    Alert.objects.bulk_create(  # bulk_create skips save(): rows as they were before the lifecycle columns
        [
            Alert(organization=organization, level="error", alert_type="task_failed", message=f"m{i}")
            for i in range(3)
        ]
    )
    assert Alert.objects.filter(last_seen_at__isnull=True).count() == 3
    try:
        migrate_to(("monitoring", "0004_alert_lifecycle_fields"))
        migrate_to(("monitoring", "0005_backfill_alert_last_seen"))
        for alert in Alert.objects.all():
            assert alert.last_seen_at == alert.created_at
    finally:
        migrate_to(latest_monitoring_migration())
