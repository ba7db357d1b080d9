"""DataLineage: one edge per data hand-over between two task runs."""

from __future__ import annotations

import uuid

from django.db import models

from django_etl.lineage.choices import RelationshipType
from django_etl.runs.models import TaskRun


class DataLineage(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # No database constraints to the partitioned task_runs (docs/partitioning.md); the ORM cascades deletes.
    source_task = models.ForeignKey(
        TaskRun, on_delete=models.CASCADE, related_name="lineage_as_source", db_constraint=False
    )
    target_task = models.ForeignKey(
        TaskRun, on_delete=models.CASCADE, related_name="lineage_as_target", db_constraint=False
    )
    relationship_type = models.CharField(max_length=20, choices=RelationshipType.choices)
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "data_lineage"
        constraints = [
            models.UniqueConstraint(
                fields=["source_task", "target_task"], name="unique_lineage_relationship"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.source_task_id} -> {self.target_task_id} ({self.relationship_type})"
