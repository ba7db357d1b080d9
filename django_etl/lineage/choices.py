"""DataLineage relationship types, importable without loading models; values from the step-kind registry."""

from __future__ import annotations

from django.db import models

from django_etl.stepkinds import Relationship

# The registry's Relationship enum is the one list; this is its Django face (labels for the admin).
RelationshipType = models.TextChoices(
    "RelationshipType", [(member.name, (member.value, member.value.title())) for member in Relationship]
)
