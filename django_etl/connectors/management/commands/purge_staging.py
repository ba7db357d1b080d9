"""purge_staging: delete staged data of runs untouched for longer than the retention (failed runs kept so far)."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = (
        "Delete the staged datasets and manifests of runs older than the retention "
        "(ETL_STAGING_RETENTION_DAYS). Successful runs are deleted when they finish; this purges the rest."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--days", type=float, default=None, help="Retention in days (default: the setting)."
        )
        parser.add_argument("--staging", default=None, help="Staging location (default: ETL_STAGING_URL).")

    def handle(self, *args, days: float | None, staging: str | None, **options) -> None:
        from airflow_plugin.staging import Staging

        retention = settings.ETL_STAGING_RETENTION_DAYS if days is None else days
        if retention < 0:
            raise ValueError(f"--days must be zero or more, not {retention}")
        deleted = Staging(staging).purge_expired(retention)
        for path in deleted:
            self.stdout.write(f"deleted {path}")
        self.stdout.write(f"{len(deleted)} run folder(s) older than {retention:g} day(s) deleted")
