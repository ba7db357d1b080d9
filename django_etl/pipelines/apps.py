"""App configuration for pipelines and steps."""

from __future__ import annotations

from django.apps import AppConfig


class PipelinesConfig(AppConfig):
    name = "django_etl.pipelines"
    label = "pipelines"
    verbose_name = "Pipelines"
