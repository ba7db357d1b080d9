"""App configuration for data lineage."""

from __future__ import annotations

from django.apps import AppConfig


class LineageConfig(AppConfig):
    name = "django_etl.lineage"
    label = "lineage"
    verbose_name = "Lineage"
