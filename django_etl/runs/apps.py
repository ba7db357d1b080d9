"""App configuration for pipeline and task runs."""

from __future__ import annotations

from django.apps import AppConfig


class RunsConfig(AppConfig):
    name = "django_etl.runs"
    label = "runs"
    verbose_name = "Runs"

    def ready(self) -> None:
        from django_etl.runs import checks  # noqa: F401  (registers the partition check)
