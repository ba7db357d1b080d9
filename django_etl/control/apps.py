"""App configuration for Django's control of Airflow (webhook endpoints and their deliveries)."""

from __future__ import annotations

from django.apps import AppConfig


class ControlConfig(AppConfig):
    name = "django_etl.control"
    label = "control"
    verbose_name = "Airflow control"
