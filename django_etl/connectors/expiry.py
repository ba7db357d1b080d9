"""Credential expiry: refused at run time and by the admin's probes (the warning alert: monitoring/expiry.py)."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.utils import timezone

from django_etl.errors import ConfigurationError


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
