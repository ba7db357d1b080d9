"""Every alert names its organization: write-back fills it, run-less alerts carry it, the admin scopes by it."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.airflow_plugin.conftest import RECORDER_DATABASES, recorder_alias  # noqa: F401  (registers the alias)


@pytest.fixture
def run(pipeline):
    from django_etl.runs.models import PipelineRun

    return PipelineRun.objects.create(pipeline=pipeline, trigger_type="manual", status="failed")


@pytest.mark.django_db(transaction=True, databases=RECORDER_DATABASES)
def test_ensure_alert_fills_the_runs_organization(run, organization):
    from airflow_plugin.writeback.alerts import ensure_alert
    from django_etl.monitoring.models import Alert

    created = ensure_alert(
        run,
        None,
        alert_type="task_failed",
        level="error",
        key="k1",
        condition="task_failed:test",
        message="boom",
        metadata={},
    )
    assert created
    assert Alert.objects.get(metadata__event_key="k1").organization_id == organization.pk


@pytest.mark.django_db
def test_alert_save_fills_organization_from_its_run(run, organization):
    from django_etl.monitoring.models import Alert

    alert = Alert.objects.create(pipeline_run=run, level="error", alert_type="task_failed", message="x")
    assert alert.organization_id == organization.pk


@pytest.mark.django_db
def test_alert_admin_lists_run_less_alerts_of_own_organization_only(
    client, user, organization, other_organization
):
    from django_etl.monitoring.models import Alert

    own = Alert.objects.create(
        organization=organization, level="warning", alert_type="credential_expiring", message="own expiring"
    )
    foreign = Alert.objects.create(
        organization=other_organization, level="warning", alert_type="credential_expiring", message="canary"
    )
    client.force_login(user)
    listing = client.get(reverse("admin:monitoring_alert_changelist")).content.decode()
    assert "own expiring" in listing and "canary" not in listing
    assert client.get(reverse("admin:monitoring_alert_change", args=[own.pk])).status_code == 200
    assert client.get(reverse("admin:monitoring_alert_change", args=[foreign.pk])).status_code == 404
