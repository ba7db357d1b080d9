"""Credential expiry: refused at run time and by the admin's probes, warned about before it comes (issue 12)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from django_etl.errors import ConfigurationError

WARNING_KEY = "credential_expiring:{credential_id}:{expires_at}"


class CredentialExpiredError(ConfigurationError):
    """A connector's credential passed its ``expires_at``: nothing may use it until someone renews it."""


def expiry_text(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def refuse_expired(connector, *, now: dt.datetime | None = None) -> None:
    """Raise CredentialExpiredError naming the credential and its expiry when ``connector``'s one has expired."""
    credential = connector.credential if connector.credential_id else None
    if credential is None or credential.expires_at is None:
        return
    if credential.expires_at <= (now or timezone.now()):
        raise CredentialExpiredError(
            f"credential {credential.name!r} of connector {connector.name!r} expired on "
            f"{expiry_text(credential.expires_at)}: renew its secret and expiry in the admin"
        )


def warning_window() -> dt.timedelta:
    return dt.timedelta(days=settings.ETL_CREDENTIAL_EXPIRY_WARNING_DAYS)


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
