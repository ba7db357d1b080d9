"""The warning alert raised before a credential expires, once per credential and expiry (issue 12).

It lives with the alerts, not in ``connectors`` (which never import the run records, pyproject's contracts).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.utils import timezone

from django_etl.connectors.expiry import expiry_text, warning_window

# The condition: this credential's secret, valid until this date, runs out (a renewal is a new condition).
CONDITION = "credential_expiring:{credential_id}:{expires_at}"


@dataclass
class ExpiryReport:
    expired: int = 0
    expiring: int = 0
    alerts_raised: int = 0
    alerts_resolved: int = 0


def raise_expiry_warnings(*, now: dt.datetime | None = None, using: str = "default") -> ExpiryReport:
    """One open alert per credential (and expiry date) that expires within the window or has expired.

    A warning while it expires soon, raised to an error once it has expired (the same alert, escalated, so
    routing tells people again). Running this daily (or from the maintenance DAG and the command both) counts
    each state once. A credential renewed (a new expiry date, or none) has its old alert resolved; coming near
    again it gets a new one.
    """
    from django_etl.connectors.models import Credential
    from django_etl.monitoring.choices import AlertLevel, AlertType
    from django_etl.monitoring.lifecycle import CONDITION_CLEARED, raise_alert, resolve_alerts
    from django_etl.monitoring.models import Alert

    now = now or timezone.now()
    report = ExpiryReport()
    due = Credential.objects.using(using).filter(
        expires_at__isnull=False, expires_at__lte=now + warning_window()
    )
    current = set()
    for credential in due.select_related("organization").order_by("expires_at", "pk"):
        expired = credential.expires_at <= now
        if expired:
            report.expired += 1
        else:
            report.expiring += 1
        key = CONDITION.format(credential_id=credential.pk, expires_at=credential.expires_at.isoformat())
        current.add(key)
        verb = "expired on" if expired else "expires on"
        _, created = raise_alert(
            alert_type=AlertType.CREDENTIAL_EXPIRING,
            level=AlertLevel.ERROR if expired else AlertLevel.WARNING,
            condition_key=key,
            organization_id=credential.organization_id,
            message=(
                f"Credential {credential.name!r} {verb} {expiry_text(credential.expires_at)}: connectors "
                "using it are refused from then on. Renew its secret and expiry in the admin."
            ),
            metadata={
                "event_key": f"{key}:{'expired' if expired else 'expiring'}",
                "credential_id": str(credential.pk),
                "expires_at": credential.expires_at.isoformat(),
            },
            using=using,
        )
        report.alerts_raised += int(created)
    renewed = Alert.objects.using(using).filter(
        alert_type=AlertType.CREDENTIAL_EXPIRING,
        is_resolved=False,
        condition_key__startswith="credential_expiring:",
    )
    stale = [key for key in renewed.values_list("condition_key", flat=True) if key not in current]
    if stale:
        report.alerts_resolved = resolve_alerts(
            condition_keys=stale, how=CONDITION_CLEARED, note="the credential was renewed", using=using
        )
    return report
