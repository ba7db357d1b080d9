"""DataLineage edges of one run: which task run handed which datasets to which other task run, and how.

The relationship of an edge is the operator's word (its manifest's ``relationship``) when it gives one, else
the step kind's rule from the registry (``django_etl.stepkinds.relationship_for``).
"""

from __future__ import annotations

from typing import Any

from airflow_plugin.writeback.delivery import ALIAS
from django_etl.lineage.choices import RelationshipType
from django_etl.runs.choices import RunStatus
from django_etl.stepkinds import relationship_for

# A hand-over happened when the target read its inputs; a target that never started read nothing.
_READ_STATUSES = {RunStatus.SUCCESS, RunStatus.FAILED, RunStatus.TIMEOUT}


def record_lineage(pipeline_run, task_runs: dict[str, Any], manifests: dict[str, dict[str, Any]]) -> int:
    """Upsert one edge per (source task run, target task run); the number of edges written."""
    from django_etl.lineage.models import DataLineage

    steps = (pipeline_run.context or {}).get("steps") or {}
    producers = _producers(steps, manifests)
    configs = _step_configs(pipeline_run, task_runs)
    existing = {
        (edge.source_task_id, edge.target_task_id): edge
        for edge in DataLineage.objects.using(ALIAS).filter(
            target_task_id__in=[t.pk for t in task_runs.values()]
        )
    }
    new_edges = []
    written = 0
    for target_id, target in task_runs.items():
        if target.status not in _READ_STATUSES:
            continue
        manifest = manifests.get(target_id)
        inputs = _inputs_of(target_id, manifest, steps)
        by_source: dict[str, list[dict[str, Any]]] = {}
        for entry in inputs:
            source_id = producers.get(entry.get("dataset")) or producers.get(entry.get("uri"))
            if source_id and source_id != target_id and source_id in task_runs:
                by_source.setdefault(source_id, []).append(entry)
        step_type = (manifest or {}).get("step_type") or (steps.get(target_id) or {}).get("step_type")
        step_row = configs.get(target.pipeline_step_id)
        relationship = relationship_from_manifest(
            manifest,
            relationship_for(
                step_type or getattr(step_row, "step_type", None), getattr(step_row, "config", None)
            ),
        )
        for source_id, entries in by_source.items():
            metadata = {
                "source_task_id": source_id,
                "target_task_id": target_id,
                "datasets": sorted({e.get("dataset") for e in entries if e.get("dataset")}),
                "columns": sorted({f["name"] for e in entries for f in e.get("schema") or [] if "name" in f}),
                "rows": sum(int(e.get("rows") or 0) for e in entries),
                "column_mapping": (manifest or {}).get("column_mapping") or {},
            }
            edge = existing.get((task_runs[source_id].pk, target.pk))
            if edge is None:
                new_edges.append(
                    DataLineage(
                        source_task=task_runs[source_id],
                        target_task=target,
                        relationship_type=relationship,
                        metadata=metadata,
                    )
                )
            elif edge.metadata != metadata or edge.relationship_type != relationship:
                edge.metadata, edge.relationship_type = metadata, relationship
                edge.save(using=ALIAS, update_fields=["metadata", "relationship_type"])
            written += 1
    # A concurrent reconciliation of the same run may have inserted some: the unique pair keeps one.
    DataLineage.objects.using(ALIAS).bulk_create(new_edges, ignore_conflicts=True)
    return written


def relationship_from_manifest(manifest: dict[str, Any] | None, fallback: str) -> str:
    """The operator's own word (manifest ``relationship``) wins over the config-based guess."""
    value = (manifest or {}).get("relationship")
    return value if value in RelationshipType.values else fallback


def _producers(steps: dict[str, dict[str, Any]], manifests: dict[str, dict[str, Any]]) -> dict[str, str]:
    """dataset name (and staged uri) -> the task id that wrote it."""
    producers: dict[str, str] = {}
    for task_id, step in steps.items():
        if step.get("output"):
            producers[step["output"]] = task_id
    for task_id, manifest in manifests.items():
        for output in manifest.get("outputs") or []:
            for key in ("dataset", "uri"):
                if output.get(key):
                    producers[output[key]] = task_id
    return producers


def _inputs_of(task_id: str, manifest: dict[str, Any] | None, steps: dict[str, dict[str, Any]]) -> list[dict]:
    if manifest and manifest.get("inputs"):
        return [i for i in manifest["inputs"] if isinstance(i, dict)]
    return [{"dataset": name} for name in (steps.get(task_id) or {}).get("inputs") or []]


def _step_configs(pipeline_run, task_runs: dict[str, Any]) -> dict[Any, Any]:
    """step id -> PipelineStep, in one query."""
    from django_etl.pipelines.models import PipelineStep

    ids = [task_run.pipeline_step_id for task_run in task_runs.values()]
    return PipelineStep.objects.using(ALIAS).in_bulk(ids)
