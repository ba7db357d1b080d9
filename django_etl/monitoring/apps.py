"""App configuration for alerts."""

from __future__ import annotations

from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    name = "django_etl.monitoring"
    label = "monitoring"
    verbose_name = "Monitoring"
