"""DataLineage edges of one run: which task run handed which staged dataset to which other task run, and how.

**Edges follow the hand-over.** A task that read a dataset is linked to the task that handed it that exact
staged version: the producer whose output has the name *and* the staged uri the reader's manifest lists. A
validate step re-publishes its input under the same name and uri, so two tasks offer the same version; the
reader got it from the one nearest upstream of it in the DAG (the validate step, when it sits between). The
relationship of an edge is the reader's manifest's word (``relationship``) when it gives one, else the step
kind's rule from the registry (``django_etl.stepkinds.relationship_for``). Each edge's ``metadata`` carries
the column lineage of the hand-over (``airflow_plugin.columnlineage``; docs/write-back.md, "Lineage").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from airflow_plugin import columnlineage
from airflow_plugin.writeback.delivery import ALIAS
from django_etl.lineage.choices import RelationshipType
from django_etl.runs.choices import RunStatus
from django_etl.stepkinds import relationship_for

# A hand-over happened when the target read its inputs; a target that never started read nothing.
_READ_STATUSES = {RunStatus.SUCCESS, RunStatus.FAILED, RunStatus.TIMEOUT}


@dataclass
class HandOver:
    """The datasets one task handed to another in a run (the reader's manifest entries)."""

    source: str
    target: str
    entries: list[dict[str, Any]] = field(default_factory=list)


def hand_overs(
    steps: dict[str, dict[str, Any]],
    manifests: dict[str, dict[str, Any]],
    readers: set[str],
    finished: set[str] | None = None,
) -> list[HandOver]:
    """Every (producer, reader) pair of a run, from the readers' manifests (else the spec's inputs).

    ``steps``: task id -> the run's step facts (``inputs``, ``output``, ``upstream``); ``manifests``: task id
    -> result manifest; ``readers``: the tasks that read their inputs; ``finished``: tasks that succeeded,
    which may hand over a dataset their manifest no longer shows (deleted after the run) by their spec.
    """
    offers = _offers(steps, manifests, finished)
    ancestry = _Ancestry(steps)
    found: dict[tuple[str, str], HandOver] = {}
    for target in sorted(readers):
        for entry in _inputs_of(target, manifests.get(target), steps):
            candidates = [
                task for task, outputs in offers.items() if task != target and _offers_entry(outputs, entry)
            ]
            for source in ancestry.nearest(target, candidates, manifests):
                found.setdefault((source, target), HandOver(source, target)).entries.append(entry)
    return list(found.values())


def record_lineage(pipeline_run, task_runs: dict[str, Any], manifests: dict[str, dict[str, Any]]) -> int:
    """Upsert one edge per hand-over (source task run, target task run); the number of edges written.

    Edges of a reader whose manifest is at hand and that no longer match a hand-over (a task cleared and
    run again) are deleted; without the manifest the reader's edges are left as they are.
    """
    from django_etl.lineage.models import DataLineage

    steps = (pipeline_run.context or {}).get("steps") or {}
    readers = {task_id for task_id, row in task_runs.items() if row.status in _READ_STATUSES}
    finished = {task_id for task_id, row in task_runs.items() if row.status == RunStatus.SUCCESS}
    pairs = [h for h in hand_overs(steps, manifests, readers, finished) if h.source in task_runs]
    configs = _step_configs(task_runs)
    edges = DataLineage.objects.using(ALIAS)
    existing = {
        (edge.source_task_id, edge.target_task_id): edge
        for edge in edges.filter(target_task_id__in=[t.pk for t in task_runs.values()])
    }
    wanted = set()
    new_edges = []
    for hand_over in pairs:
        source, target = task_runs[hand_over.source], task_runs[hand_over.target]
        manifest = manifests.get(hand_over.target)
        step_row = configs.get(target.pipeline_step_id)
        step_type = (manifest or {}).get("step_type") or (steps.get(hand_over.target) or {}).get("step_type")
        relationship = relationship_from_manifest(
            manifest,
            relationship_for(
                step_type or getattr(step_row, "step_type", None), getattr(step_row, "config", None)
            ),
        )
        metadata = edge_metadata(hand_over, manifest, step_type)
        wanted.add((source.pk, target.pk))
        edge = existing.get((source.pk, target.pk))
        if edge is None:
            new_edges.append(
                DataLineage(
                    source_task=source, target_task=target, relationship_type=relationship, metadata=metadata
                )
            )
        elif edge.metadata != metadata or edge.relationship_type != relationship:
            edge.metadata, edge.relationship_type = metadata, relationship
            edge.save(using=ALIAS, update_fields=["metadata", "relationship_type"])
    stale = [
        edge.pk
        for (source_pk, target_pk), edge in existing.items()
        if (source_pk, target_pk) not in wanted and _task_of(task_runs, target_pk) in manifests
    ]
    if stale:
        edges.filter(pk__in=stale).delete()
    # A concurrent reconciliation of the same run may have inserted some: the unique pair keeps one.
    edges.bulk_create(new_edges, ignore_conflicts=True)
    return len(wanted)


def edge_metadata(
    hand_over: HandOver, manifest: dict[str, Any] | None, step_type: str | None
) -> dict[str, Any]:
    """What one edge records: the datasets handed over and the column lineage of the reader's output."""
    datasets = sorted({e["dataset"] for e in hand_over.entries if e.get("dataset")})
    lineage = columnlineage.restricted(columnlineage.of_manifest(manifest, step_type), datasets)
    metadata = {
        "source_task_id": hand_over.source,
        "target_task_id": hand_over.target,
        "datasets": datasets,
        "uris": sorted({e["uri"] for e in hand_over.entries if e.get("uri")}),
        "rows": sum(int(e.get("rows") or 0) for e in hand_over.entries),
        "output": _output_of(manifest),
        "columns": lineage["columns"],
        "column_lineage": lineage["status"],
    }
    if lineage.get("reason"):
        metadata["reason"] = lineage["reason"]
    if lineage.get("unknown_columns"):
        metadata["unknown_columns"] = lineage["unknown_columns"]
    return metadata


def relationship_from_manifest(manifest: dict[str, Any] | None, fallback: str) -> str:
    """The operator's own word (manifest ``relationship``) wins over the config-based guess."""
    value = (manifest or {}).get("relationship")
    return value if value in RelationshipType.values else fallback


# ---------------------------------------------------------------- hand-over rules
def _offers(steps, manifests, finished) -> dict[str, list[dict[str, Any]]]:
    """task id -> the dataset versions it handed on: its successful manifest's outputs, else its spec output."""
    offers: dict[str, list[dict[str, Any]]] = {}
    for task_id, manifest in manifests.items():
        # A load's outputs are its target table or file, never a staged dataset another task reads.
        if manifest.get("status") == "success" and manifest.get("step_type") != "load":
            offers[task_id] = [o for o in manifest.get("outputs") or [] if isinstance(o, dict)]
    for task_id, step in steps.items():
        succeeded = finished is None or task_id in finished
        if task_id not in manifests and succeeded and step.get("output"):
            offers[task_id] = [{"dataset": step["output"]}]
    return offers


def _offers_entry(outputs: list[dict[str, Any]], entry: dict[str, Any]) -> bool:
    """Whether one of ``outputs`` is the version ``entry`` names: same dataset, same staged uri when both say."""
    for output in outputs:
        if output.get("dataset") != entry.get("dataset"):
            continue
        if output.get("uri") and entry.get("uri") and output["uri"] != entry["uri"]:
            continue
        return True
    return False


def _inputs_of(task_id: str, manifest: dict[str, Any] | None, steps: dict[str, dict[str, Any]]) -> list[dict]:
    if manifest and manifest.get("inputs"):
        return [i for i in manifest["inputs"] if isinstance(i, dict) and i.get("dataset")]
    return [{"dataset": name} for name in (steps.get(task_id) or {}).get("inputs") or []]


class _Ancestry:
    """Upstream relations of the run's tasks, from the step map's ``upstream`` lists."""

    def __init__(self, steps: dict[str, dict[str, Any]]) -> None:
        self.upstream = {task: list(step.get("upstream") or []) for task, step in steps.items()}
        self.known = any(self.upstream.values())
        self._cache: dict[str, set[str]] = {}

    def ancestors(self, task: str) -> set[str]:
        if task not in self._cache:
            seen: set[str] = set()
            stack = list(self.upstream.get(task, []))
            while stack:
                node = stack.pop()
                if node not in seen:
                    seen.add(node)
                    stack.extend(self.upstream.get(node, []))
            self._cache[task] = seen
        return self._cache[task]

    def nearest(self, target: str, candidates: list[str], manifests: dict[str, dict[str, Any]]) -> list[str]:
        """The candidates that handed ``target`` its version: upstream of it, with no other candidate between."""
        if not candidates:
            return []
        if self.known:
            upstream = [c for c in candidates if c in self.ancestors(target)]
            if not upstream:
                return []  # offered only by tasks that did not run before it: nothing was handed over
            return sorted(c for c in upstream if not any(c in self.ancestors(other) for other in upstream))
        # No DAG shape recorded (a run written before it was): the last one to publish it.
        return [max(candidates, key=lambda c: ((manifests.get(c) or {}).get("written_at") or "", c))]


def _output_of(manifest: dict[str, Any] | None) -> str | None:
    """The reader's output: a staged dataset's name, or the table/file a load wrote."""
    if not manifest:
        return None
    target = (manifest.get("locations") or {}).get("target")
    if target:
        return f"{target['namespace']}/{target['name']}"
    outputs = [o.get("dataset") for o in manifest.get("outputs") or [] if isinstance(o, dict)]
    return outputs[0] if outputs else None


def _task_of(task_runs: dict[str, Any], pk) -> str | None:
    for task_id, row in task_runs.items():
        if row.pk == pk:
            return task_id
    return None


def _step_configs(task_runs: dict[str, Any]) -> dict[Any, Any]:
    """step id -> PipelineStep, in one query."""
    from django_etl.pipelines.models import PipelineStep

    ids = [task_run.pipeline_step_id for task_run in task_runs.values()]
    return PipelineStep.objects.using(ALIAS).in_bulk(ids)
