"""App configuration for connectors and credentials."""

from __future__ import annotations

from django.apps import AppConfig


class ConnectorsConfig(AppConfig):
    name = "django_etl.connectors"
    label = "connectors"
    verbose_name = "Connectors and credentials"

    def ready(self) -> None:
        from django_etl.connectors import checks  # noqa: F401  (registers the system checks)
