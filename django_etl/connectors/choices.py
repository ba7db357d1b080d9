"""The connector types (seed section 2), importable without loading models."""

from __future__ import annotations

from django.db import models


class ConnectorType(models.TextChoices):
    DATABASE = "database", "Database"
    API = "api", "API"
    FILE = "file", "File"
    CLOUD = "cloud", "Cloud Storage"
