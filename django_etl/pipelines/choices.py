"""Pipeline statuses and step types; StepType's values come from the step-kind registry."""

from __future__ import annotations

from django.db import models

from django_etl.stepkinds import STEP_KINDS


class PipelineStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    ACTIVE = "active", "Active"
    PAUSED = "paused", "Paused"
    DEPRECATED = "deprecated", "Deprecated"


# One member per registry entry: adding a step kind changes these choices (then run makemigrations).
StepType = models.TextChoices(
    "StepType", [(kind.name.upper(), (kind.name, kind.label)) for kind in STEP_KINDS.values()]
)


# Statuses whose pipelines have a DAG file (active: unpaused on creation, paused: paused on creation).
DEPLOYED_STATUSES = (PipelineStatus.ACTIVE, PipelineStatus.PAUSED)
