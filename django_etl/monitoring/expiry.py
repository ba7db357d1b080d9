"""The warning alert raised before a credential expires, once per credential and expiry (issue 12).

It lives with the alerts, not in ``connectors`` (which never import the run records, pyproject's contracts).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from django_etl.connectors.expiry import expiry_text, warning_window

WARNING_KEY = "credential_expiring:{credential_id}:{expires_at}"


@dataclass
class ExpiryReport:
    expired: int = 0
    expiring: int = 0
    alerts_raised: int = 0


def raise_expiry_warnings(*, now: dt.datetime | None = None, using: str = "default") -> ExpiryReport:
    """One warning alert per credential (and expiry date) that expires within the window or has expired.

    The alert's ``metadata.event_key`` names the credential and its expiry, so running this daily (or from
    the maintenance DAG and the command both) raises each warning once; renewing the expiry raises a new one.
    """
    from django_etl.connectors.models import Credential
    from django_etl.monitoring.choices import AlertLevel, AlertType
    from django_etl.monitoring.models import Alert

    now = now or timezone.now()
    report = ExpiryReport()
    due = Credential.objects.using(using).filter(
        expires_at__isnull=False, expires_at__lte=now + warning_window()
    )
    for credential in due.select_related("organization").order_by("expires_at", "pk"):
        expired = credential.expires_at <= now
        if expired:
            report.expired += 1
        else:
            report.expiring += 1
        key = WARNING_KEY.format(credential_id=credential.pk, expires_at=credential.expires_at.isoformat())
        verb = "expired on" if expired else "expires on"
        with transaction.atomic(using=using):
            alerts = Alert.objects.using(using)
            if alerts.filter(alert_type=AlertType.CREDENTIAL_EXPIRING, metadata__event_key=key).exists():
                continue
            alerts.create(
                organization_id=credential.organization_id,
                alert_type=AlertType.CREDENTIAL_EXPIRING,
                level=AlertLevel.ERROR if expired else AlertLevel.WARNING,
                message=(
                    f"Credential {credential.name!r} {verb} {expiry_text(credential.expires_at)}: connectors "
                    "using it are refused from then on. Renew its secret and expiry in the admin."
                ),
                metadata={
                    "event_key": key,
                    "credential_id": str(credential.pk),
                    "expires_at": credential.expires_at.isoformat(),
                },
            )
            report.alerts_raised += 1
    return report
