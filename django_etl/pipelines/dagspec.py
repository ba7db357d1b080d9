"""Pipeline + steps -> the plain, JSON-able spec that a generated DAG file embeds (docs/dag-mapping.md)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from django_etl.pipelines.naming import dag_id_for
from django_etl.pipelines.validation import Report, validate_pipeline
from django_etl.pipelines.validation.schemas import PipelineConfig

if TYPE_CHECKING:
    from django_etl.pipelines.models import Pipeline, PipelineStep

# Bumped when the spec's shape changes, so airflow_plugin.builder can refuse a spec it does not understand.
SPEC_FORMAT = 1
# Airflow refuses longer tags (airflow.sdk.definitions.dag.TAG_MAX_LEN).
TAG_MAX_LEN = 100
# Timetables that allow a single active run only.
SINGLE_RUN_SCHEDULES = {"@continuous"}


def build_spec(
    pipeline: Pipeline, steps: Sequence[PipelineStep] | None = None, *, connectors: dict | None = None
) -> tuple[dict | None, Report]:
    """The pipeline's spec, or None and a report naming every problem (the admin's validation, plus DAG rules).

    ``connectors`` (name -> Connector of the pipeline's organization) saves a query per pipeline in bulk runs.
    """
    from django_etl.pipelines.validation import dataset_plan, step_graph

    steps = sorted(steps if steps is not None else pipeline.steps.all(), key=lambda s: s.order_index)
    report = validate_pipeline(pipeline, steps, connectors=connectors)
    if report:
        return None, report
    config = PipelineConfig.model_validate(pipeline.config)
    tags = _tags(pipeline, steps)
    _check_dag_rules(report, pipeline, config, steps)
    if report:
        return None, report

    edges = step_graph(steps)
    data, _ = dataset_plan(steps, edges)
    task_ids = {str(s.pk): s.task_id for s in steps}
    spec = {
        "format": SPEC_FORMAT,
        "pipeline": {
            "id": str(pipeline.pk),
            "dag_id": dag_id_for(pipeline.pk),
            "name": pipeline.name,
            "organization": pipeline.organization.slug,
            "organization_id": str(pipeline.organization_id),
            "organization_name": pipeline.organization.name,
            "version": pipeline.version,
            "status": pipeline.status,
        },
        "dag": {
            "display_name": pipeline.name,
            "description": pipeline.description,
            "tags": tags,
            "owner": config.owner,
            "schedule": config.schedule,
            "start_date": config.start_date,
            "timezone": config.timezone,
            "catchup": config.catchup,
            "max_active_runs": config.max_active_runs,
            "dagrun_timeout_seconds": config.dagrun_timeout_seconds,
            "is_paused_upon_creation": pipeline.status != "active",
            "params": {name: param.model_dump(mode="json") for name, param in sorted(config.params.items())},
        },
        "steps": [_step_entry(step, config, data[str(step.pk)], edges, task_ids) for step in steps],
    }
    spec["pipeline"]["spec_hash"] = spec_hash(spec)
    return spec, report


def _step_entry(step, config: PipelineConfig, data, edges, task_ids) -> dict[str, Any]:
    options = step.config

    def option(key: str) -> Any:
        # A step's own retries/timeouts override the pipeline's defaults.
        value = options.get(key)
        return getattr(config, key) if value is None else value

    return {
        "id": str(step.pk),
        "name": step.name,
        "task_id": step.task_id,
        "step_type": step.step_type,
        "order_index": step.order_index,
        "config": step.config,
        "inputs": list(data.inputs),
        "output": data.output,
        "upstream": [task_ids[u] for u in edges[str(step.pk)]],
        "retries": option("retries"),
        "retry_delay_seconds": option("retry_delay_seconds"),
        "execution_timeout_seconds": option("execution_timeout_seconds"),
    }


def _tags(pipeline: Pipeline, steps: Sequence[PipelineStep]) -> list[str]:
    metadata_tags = pipeline.metadata.get("tags", []) if isinstance(pipeline.metadata, dict) else []
    tags = {pipeline.organization.slug, f"version:{pipeline.version}"}
    tags.update(s.step_type for s in steps)
    tags.update(metadata_tags)
    return sorted(tags)


def _check_dag_rules(report: Report, pipeline: Pipeline, config: PipelineConfig, steps) -> None:
    """Rules Airflow enforces when it builds the DAG; checked here so a bad pipeline never reaches a file."""
    where = f"pipeline {pipeline.name!r}"
    if not steps:
        report.add(
            where, "steps", "has no steps: a DAG without tasks would never do anything", field="__all__"
        )
    for position, tag in enumerate(pipeline.metadata.get("tags", [])):
        if len(tag) > TAG_MAX_LEN:
            report.add(
                where, f"metadata.tags[{position}]", f"longer than {TAG_MAX_LEN} characters", field="metadata"
            )
    if config.schedule in SINGLE_RUN_SCHEDULES and config.max_active_runs > 1:
        report.add(
            where,
            "config.max_active_runs",
            f"schedule {config.schedule!r} allows one active run; set max_active_runs to 1",
            field="config",
        )


def spec_hash(spec: dict) -> str:
    """sha256 of the spec's canonical JSON, without the hash itself: changes whenever the DAG would."""
    pipeline = {k: v for k, v in spec["pipeline"].items() if k != "spec_hash"}
    canonical = json.dumps({**spec, "pipeline": pipeline}, sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()
