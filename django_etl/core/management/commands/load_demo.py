"""load_demo: create or refresh the demo organization, its users, connectors, credentials and pipelines."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from django_etl.core.demo import DEMO_ADMIN, load_demo


class Command(BaseCommand):
    help = (
        "Create or refresh the demo organization 'Demo Company' with an admin and an analyst, file, SQLite, "
        "PostgreSQL, S3 and API connectors, encrypted credentials, and two active pipelines that use every "
        "step type. Safe to run again: it updates the same objects."
    )

    def handle(self, *args, **options) -> None:
        summary = load_demo()
        self.stdout.write(self.style.SUCCESS(f"Demo organization '{summary.organization}' is ready."))
        self.stdout.write(f"  pipelines:  {', '.join(summary.pipelines)}")
        self.stdout.write(f"  connectors: {', '.join(summary.connectors)}")
        self.stdout.write(
            f"  admin login: {DEMO_ADMIN[0]} / {DEMO_ADMIN[1]}  (analyst / analyst sees read-only)"
        )
