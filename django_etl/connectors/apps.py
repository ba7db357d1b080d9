"""App configuration for connectors and credentials."""

from __future__ import annotations

from django.apps import AppConfig


class ConnectorsConfig(AppConfig):
    name = "django_etl.connectors"
    label = "connectors"
    verbose_name = "Connectors and credentials"
