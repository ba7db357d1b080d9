"""Send the alert deliveries that are due (the outbox the alert rules fill); retries wait their backoff."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from django_etl.monitoring.routing import deliver_alerts


class Command(BaseCommand):
    help = (
        "Send the alert deliveries (email, webhook) that are due: those of new or escalated alerts that match an "
        "organization's alert rules, and earlier failed attempts whose backoff has passed. The etl_alert_delivery "
        "DAG runs this every ETL_ALERT_DELIVERY_SCHEDULE; safe to run alongside it (a delivery is sent once)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--limit", type=int, default=200, help="At most this many deliveries in this run (default 200)."
        )

    def handle(self, *args, limit: int, verbosity: int = 1, **options) -> None:
        progress = self.stdout.write if verbosity > 1 else None
        report = deliver_alerts(limit=limit, log_progress=progress)
        self.stdout.write(
            f"{report.sent} sent, {report.retrying} to retry later, {report.failed} failed for good, "
            f"{report.refused} refused."
        )
