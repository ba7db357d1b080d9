"""load_demo: create or refresh the demo organization, its users, connectors, credentials and pipelines."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand

from django_etl.core.demo import DEMO_ADMIN, DEMO_ANALYST, load_demo


class Command(BaseCommand):
    help = (
        "Create or refresh the demo organization 'Demo Company' with an admin and an analyst, file, SQLite, "
        "PostgreSQL, S3 and API connectors, encrypted credentials, and two active pipelines that use every "
        "step type. Safe to run again: it updates the same objects. With DJANGO_DEBUG=false the users get "
        "generated passwords, printed once, never the well-known development ones."
    )

    def handle(self, *args, **options) -> None:
        summary = load_demo()
        self.stdout.write(self.style.SUCCESS(f"Demo organization '{summary.organization}' is ready."))
        self.stdout.write(f"  pipelines:  {', '.join(summary.pipelines)}")
        self.stdout.write(f"  connectors: {', '.join(summary.connectors)}")
        if settings.DEBUG:
            self.stdout.write(
                f"  admin login: {DEMO_ADMIN[0]} / {DEMO_ADMIN[1]}  "
                f"({DEMO_ANALYST[0]} / {DEMO_ANALYST[1]} sees read-only)"
            )
            return
        if not summary.passwords:
            self.stdout.write("  users keep the passwords they have (DJANGO_DEBUG is off: none was reset).")
        for username, password in summary.passwords.items():
            # Printed this once only: the next run keeps it (it is no longer the well-known one).
            self.stdout.write(f"  generated password for {username}: {password}  (shown once; store it now)")
