"""App configuration for users and organizations."""

from __future__ import annotations

from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "django_etl.core"
    label = "core"
    verbose_name = "Users and organizations"

    def ready(self) -> None:
        from django_etl.core import checks, signals  # noqa: F401  (deploy checks; last_login_ip recording)
