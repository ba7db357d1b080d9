"""Credential expiry: refused by the probes and at run time, shown in the admin, warned about once."""

from __future__ import annotations

import datetime as dt
from datetime import UTC

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from django_etl.connectors import probe
from django_etl.connectors.expiry import CredentialExpiredError, refuse_expired
from django_etl.monitoring.expiry import raise_expiry_warnings

pytestmark = pytest.mark.integration


def _expire(credential, days: float) -> None:
    credential.expires_at = timezone.now() + dt.timedelta(days=days)
    credential.save(update_fields=["expires_at"])


def test_refuse_expired_names_credential_and_expiry(db_connector, credential):
    _expire(credential, -30)
    db_connector.refresh_from_db()
    with pytest.raises(CredentialExpiredError) as caught:
        refuse_expired(db_connector)
    message = str(caught.value)
    assert "'warehouse login'" in message and "expired on" in message
    assert credential.expires_at.astimezone(UTC).strftime("%Y-%m-%d") in message
    assert caught.value.retryable is False


def test_refuse_expired_passes_future_and_missing_expiry(db_connector, credential, file_connector):
    _expire(credential, 1)
    db_connector.refresh_from_db()
    refuse_expired(db_connector)
    refuse_expired(file_connector)  # no credential at all


def test_probe_test_connection_refuses_expired_credential(db_connector, credential):
    _expire(credential, -1)
    db_connector.refresh_from_db()
    result = probe.test_connection(db_connector)
    assert not result.ok
    assert result.message.startswith("warehouse: credential 'warehouse login' of connector")
    assert "expired on" in result.message
    preview = probe.preview(db_connector)
    assert not preview.ok and "expired on" in preview.message


def test_raise_expiry_warnings_once_per_credential(credential, organization):
    from django_etl.monitoring.models import Alert

    _expire(credential, 3)
    first = raise_expiry_warnings()
    second = raise_expiry_warnings()
    assert (first.expiring, first.alerts_raised) == (1, 1)
    assert (second.expiring, second.alerts_raised) == (1, 0)
    [alert] = Alert.objects.filter(alert_type="credential_expiring")
    assert alert.organization_id == organization.pk
    assert alert.pipeline_run_id is None and alert.level == "warning"
    assert "'warehouse login' expires on" in alert.message
    # A renewed expiry that comes near again gets its own warning.
    _expire(credential, 5)
    assert raise_expiry_warnings().alerts_raised == 1


def test_raise_expiry_warnings_ignores_credentials_outside_the_window(credential, settings):
    settings.ETL_CREDENTIAL_EXPIRY_WARNING_DAYS = 2
    _expire(credential, 3)
    assert raise_expiry_warnings().alerts_raised == 0
    settings.ETL_CREDENTIAL_EXPIRY_WARNING_DAYS = 4
    assert raise_expiry_warnings().alerts_raised == 1


def test_check_credentials_command_reports_and_raises(credential, capsys):
    from django_etl.monitoring.models import Alert

    _expire(credential, -2)
    call_command("check_credentials")
    assert "1 expired, 0 expiring" in capsys.readouterr().out
    assert Alert.objects.get(alert_type="credential_expiring").level == "error"


def test_credential_admin_filters_and_colours_expiry(client, user, organization, credential):
    from django_etl.connectors.models import Credential

    _expire(credential, -1)
    soon = Credential.objects.create_encrypted(
        name="soon login", organization=organization, data={"password": "another-secret"}
    )
    _expire(soon, 2)
    Credential.objects.create_encrypted(
        name="later login", organization=organization, data={"password": "x" * 9}
    )
    client.force_login(user)
    url = reverse("admin:connectors_credential_changelist")
    page = client.get(url).content.decode()
    assert "(expired)" in page and "(expires soon)" in page
    expired = client.get(url, {"expiry": "expired"}).content.decode()
    assert "warehouse login" in expired and "soon login" not in expired
    coming = client.get(url, {"expiry": "soon"}).content.decode()
    assert "soon login" in coming and "warehouse login" not in coming
    never = client.get(url, {"expiry": "never"}).content.decode()
    assert "later login" in never and "soon login" not in never


def test_raise_expiry_warnings_expired_escalates_the_same_alert(credential):
    from django_etl.monitoring.models import Alert

    _expire(credential, 3)
    raise_expiry_warnings()
    raise_expiry_warnings(now=credential.expires_at + dt.timedelta(hours=1))
    [alert] = Alert.objects.filter(alert_type="credential_expiring")
    assert alert.level == "error" and alert.metadata["escalated_from"] == "warning"
    assert alert.occurrences == 2 and "expired on" in alert.message


def test_raise_expiry_warnings_renewal_resolves_the_old_alert(credential):
    from django_etl.monitoring.models import Alert

    _expire(credential, 3)
    raise_expiry_warnings()
    credential.expires_at = None
    credential.save()
    report = raise_expiry_warnings()
    assert report.alerts_resolved == 1
    [alert] = Alert.objects.filter(alert_type="credential_expiring")
    assert alert.is_resolved and alert.metadata["resolution"]["how"] == "condition_cleared"
