"""App configuration for pipelines and steps."""

from __future__ import annotations

from django.apps import AppConfig


class PipelinesConfig(AppConfig):
    name = "django_etl.pipelines"
    label = "pipelines"
    verbose_name = "Pipelines"

    def ready(self) -> None:
        from django_etl.pipelines import signals  # noqa: F401  (connects the DAG file regeneration)
