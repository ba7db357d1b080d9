"""purge_staging: delete staged data of runs untouched for longer than the retention (failed runs kept so far)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from django_etl import conf
from django_etl.dataplane.staging import Staging


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
        retention = conf.value("ETL_STAGING_RETENTION_DAYS") if days is None else days
        if retention < 0:
            raise CommandError(f"--days must be zero or more, not {retention:g}")
        location = Staging(staging)
        try:
            deleted = location.purge_expired(retention)
        except OSError as exc:
            raise CommandError(f"cannot purge staging location {location.url!r}: {exc}") from None
        for path in deleted:
            self.stdout.write(f"deleted {path}")
        self.stdout.write(f"{len(deleted)} run folder(s) older than {retention:g} day(s) deleted")
