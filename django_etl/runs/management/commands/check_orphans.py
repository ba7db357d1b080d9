"""check_orphans: report alerts and lineage edges whose task run is gone; exits non-zero if any."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from django_etl.runs.integrity import orphans


class Command(BaseCommand):
    help = (
        "Alerts and lineage reference task_runs without a database foreign key (task_runs is partitioned). "
        "Deletes through the ORM cascade; this check finds rows left behind by raw SQL deletes."
    )

    def handle(self, *args, **options) -> None:
        found = orphans()
        for reference, count in found.items():
            self.stdout.write(f"  {reference}: {count} orphan(s)")
        total = sum(found.values())
        if total:
            raise CommandError(f"{total} row(s) point at missing task runs.")
        self.stdout.write(self.style.SUCCESS("No orphans."))
