"""Fill Alert.organization for alerts stored before it existed: the organization of the run's pipeline."""

from __future__ import annotations

from django.db import migrations

from django_etl.migrations_kit.chunked import ResumableRunPython, migrate_in_chunks


def fill_organization(apps, schema_editor):
    Alert = apps.get_model("monitoring", "Alert")
    PipelineRun = apps.get_model("runs", "PipelineRun")
    alias = schema_editor.connection.alias

    def process(rows):
        run_ids = {alert.pipeline_run_id for alert in rows if alert.pipeline_run_id}
        organizations = dict(
            PipelineRun.objects.using(alias)
            .filter(pk__in=run_ids)
            .values_list("pk", "pipeline__organization_id")
        )
        changed = []
        for alert in rows:
            organization = organizations.get(alert.pipeline_run_id)
            if organization is not None and alert.organization_id != organization:
                alert.organization_id = organization
                changed.append(alert)
        Alert.objects.using(alias).bulk_update(changed, ["organization"])

    queryset = Alert.objects.using(alias).filter(organization__isnull=True, pipeline_run__isnull=False)
    migrate_in_chunks(queryset, process, name="monitoring.0003_backfill_alert_organization")


def clear_organization(apps, schema_editor):
    # Going back below 0002 drops the column anyway; clearing it first makes this step reversible on its own.
    Alert = apps.get_model("monitoring", "Alert")
    alias = schema_editor.connection.alias
    queryset = Alert.objects.using(alias).filter(organization__isnull=False, pipeline_run__isnull=False)

    def process(rows):
        for alert in rows:
            alert.organization_id = None
        Alert.objects.using(alias).bulk_update(rows, ["organization"])

    migrate_in_chunks(queryset, process, name="monitoring.0003_backfill_alert_organization.reverse")


class Migration(migrations.Migration):
    atomic = False  # each chunk commits on its own (django_etl/migrations_kit/chunked.py)

    dependencies = [
        ("monitoring", "0002_alert_organization"),
        ("runs", "0001_initial"),
        ("pipelines", "0001_initial"),
    ]

    operations = [ResumableRunPython(fill_organization, clear_organization)]
