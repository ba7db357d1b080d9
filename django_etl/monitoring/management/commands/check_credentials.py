"""Raise the warning alert of each credential that expires soon or has expired (run daily; idempotent)."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from django_etl.connectors.expiry import warning_window
from django_etl.monitoring.expiry import raise_expiry_warnings


class Command(BaseCommand):
    help = (
        "Raise one CREDENTIAL_EXPIRING alert per credential expiring within ETL_CREDENTIAL_EXPIRY_WARNING_DAYS "
        "(or already expired): a warning, raised to an error once expired; renewed credentials have their alert "
        "resolved. Safe to run as often as you like: each state is counted once."
    )

    def handle(self, *args, **options) -> None:
        report = raise_expiry_warnings()
        self.stdout.write(
            f"{report.expired} expired, {report.expiring} expiring within {warning_window().days} day(s); "
            f"{report.alerts_raised} new alert(s), {report.alerts_resolved} resolved (renewed)."
        )
