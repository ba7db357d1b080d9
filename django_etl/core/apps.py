"""App configuration for users and organizations."""

from __future__ import annotations

from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "django_etl.core"
    label = "core"
    verbose_name = "Users and organizations"
