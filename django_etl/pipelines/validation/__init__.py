"""One validation layer for steps and pipelines, used by admin forms, clean() and generate_dags.

Every function returns a Report holding all problems at once, each naming the object and the key.
Connectors are validated by ``django_etl.connectors.validation`` (the same Report).
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from django_etl import validation_report
from django_etl.pipelines.graph import StepNode, find_cycle, upstreams
from django_etl.pipelines.validation import datasets
from django_etl.pipelines.validation.schemas import PipelineConfig
from django_etl.stepkinds import STEP_KINDS
from django_etl.stepkinds.schemas import UNION_TAGS
from django_etl.stepkinds.templating import check_templates
from django_etl.validation_report import Problem, Report

if TYPE_CHECKING:
    from django_etl.connectors.models import Connector
    from django_etl.pipelines.models import Pipeline, PipelineStep

__all__ = [
    "Problem",
    "Report",
    "validate_pipeline",
    "validate_pipeline_config",
    "validate_step",
    "validate_step_graph",
    "validate_step_set",
]

CRON_PRESETS = {"@once", "@continuous", "@hourly", "@daily", "@weekly", "@monthly", "@quarterly", "@yearly"}


def check_schema(report: Report, schema, data: Any, where: str, key: str, field: str) -> Any:
    """Validate ``data`` against a step or pipeline schema (tagged-union tags left out of locations)."""
    return validation_report.check_schema(report, schema, data, where, key, field, union_tags=UNION_TAGS)


def _where_pipeline(pipeline: Pipeline) -> str:
    return f"pipeline {pipeline.name!r}"


def _where_step(step: PipelineStep, pipeline: Pipeline | None = None) -> str:
    owner = _where_pipeline(pipeline) + " " if pipeline is not None else ""
    return f"{owner}step {step.name!r}"


# ---------------------------------------------------------------- pipelines


def validate_pipeline_config(pipeline: Pipeline) -> Report:
    report = Report()
    where = _where_pipeline(pipeline)
    check_schema(report, PipelineConfig, pipeline.config, where, "config", "config")
    if isinstance(pipeline.config, dict):
        # Checked on the raw values too, so a schedule error is reported alongside unrelated schema errors.
        _check_schedule(report, where, pipeline.config)
    if not isinstance(pipeline.metadata, dict):
        report.add(where, "metadata", "must be a JSON object", field="metadata")
    elif "tags" in pipeline.metadata and not (
        isinstance(pipeline.metadata["tags"], list)
        and all(isinstance(t, str) for t in pipeline.metadata["tags"])
    ):
        report.add(where, "metadata.tags", "must be a list of strings", field="metadata")
    return report


def _check_schedule(report: Report, where: str, config: dict) -> None:
    schedule = config.get("schedule")
    if isinstance(schedule, str) and schedule not in CRON_PRESETS:
        from croniter import croniter

        if not croniter.is_valid(schedule):
            report.add(
                where,
                "config.schedule",
                f"{schedule!r} is not a cron expression or one of {', '.join(sorted(CRON_PRESETS))}",
                field="config",
            )
    timezone = config.get("timezone", "UTC")
    if isinstance(timezone, str):
        try:
            zoneinfo.ZoneInfo(timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            report.add(where, "config.timezone", f"unknown time zone {timezone!r}", field="config")
    start_date = config.get("start_date")
    if isinstance(start_date, str):
        import pendulum

        try:
            pendulum.parse(start_date)
        except (ValueError, pendulum.parsing.exceptions.ParserError):
            report.add(where, "config.start_date", f"{start_date!r} is not an ISO date", field="config")


def validate_step(
    step: PipelineStep,
    *,
    siblings: Sequence[PipelineStep] | None = None,
    connectors: dict[str, Connector] | None = None,
    pipeline: Pipeline | None = None,
) -> Report:
    """One step on its own: its config for its type, its connectors, its dependency ids."""
    report = Report()
    pipeline = pipeline if pipeline is not None else (step.pipeline if step.pipeline_id else None)
    where = _where_step(step, pipeline)
    kind = STEP_KINDS.get(step.step_type)
    if kind is None:
        report.add(where, "step_type", f"unknown step type {step.step_type!r}", field="step_type")
        return report
    parsed = check_schema(report, kind.schema, step.config, where, "config", "config")
    for key, message in check_templates(step.config, step.step_type):  # docs/security.md, "Templates"
        report.add(where, key, message, field="config")
    if parsed is not None and pipeline is not None:
        if connectors is None:
            connectors = _connectors_of(pipeline)
        _check_step_connectors(report, where, step, parsed, connectors)
    if siblings is None and step.pipeline_id:
        siblings = list(type(step)._default_manager.filter(pipeline_id=step.pipeline_id).exclude(pk=step.pk))
        siblings.append(step)
    _check_dependencies(report, where, step, siblings or [step])
    return report


def _connectors_of(pipeline: Pipeline) -> dict[str, Connector]:
    from django_etl.connectors.models import Connector

    return {c.name: c for c in Connector.objects.filter(organization_id=pipeline.organization_id)}


def _check_step_connectors(report, where, step, parsed, connectors) -> None:
    for key, allowed in STEP_KINDS[step.step_type].connector_keys.items():
        name = getattr(parsed, key, None)
        if not name:
            continue
        connector = connectors.get(name)
        if connector is None:
            report.add(
                where, f"config.{key}", f"no connector named {name!r} in this organization", field="config"
            )
        elif connector.connector_type not in allowed:
            report.add(
                where,
                f"config.{key}",
                f"connector {name!r} is a {connector.connector_type} connector; "
                f"expected {' or '.join(sorted(allowed))}",
                field="config",
            )
        elif not connector.is_active:
            report.add(where, f"config.{key}", f"connector {name!r} is inactive", field="config")
        else:
            _check_step_fits_connector(report, where, step.step_type, parsed, connector)


def _check_step_fits_connector(report, where, step_type, parsed, connector) -> None:
    kind = connector.connector_type
    if step_type == "extract":
        if kind == "database" and bool(parsed.query) == bool(parsed.table):
            report.add(where, "config", "a database extract needs either 'query' or 'table'", field="config")
        if kind == "database" and parsed.query and (connector.config or {}).get("engine") == "postgresql":
            from django_etl.dataplane.pgread import side_effect_refusal

            # The check the adapter repeats before sending the query (docs/security.md, "Source queries").
            refused = side_effect_refusal(parsed.query)
            if refused:
                report.add(where, "config.query", f"query refused: {refused}", field="config")
        if kind in {"file", "cloud"} and not parsed.path:
            report.add(where, "config.path", f"a {kind} extract needs 'path'", field="config")
        if kind == "api" and not parsed.endpoint:
            report.add(where, "config.endpoint", "an API extract needs 'endpoint'", field="config")
    elif step_type == "load":
        if kind == "database" and not parsed.table:
            report.add(where, "config.table", "a database load needs 'table'", field="config")
        if kind in {"file", "cloud"} and not parsed.path:
            report.add(where, "config.path", f"a {kind} load needs 'path'", field="config")


def _check_dependencies(report: Report, where: str, step, siblings) -> None:
    dependencies = step.dependencies
    if not isinstance(dependencies, list):
        report.add(where, "dependencies", "must be a list of step ids", field="dependencies")
        return
    ids = {str(s.pk) for s in siblings}
    for position, dependency in enumerate(dependencies):
        key = f"dependencies[{position}]"
        if not isinstance(dependency, str):
            report.add(where, key, "must be a step id (string)", field="dependencies")
        elif dependency == str(step.pk):
            report.add(where, key, "a step cannot depend on itself", field="dependencies")
        elif dependency not in ids:
            report.add(where, key, f"{dependency!r} is not a step of this pipeline", field="dependencies")


def validate_pipeline(
    pipeline: Pipeline,
    steps: Sequence[PipelineStep] | None = None,
    *,
    connectors: dict[str, Connector] | None = None,
) -> Report:
    """Everything about a pipeline and its steps together: what generate_dags requires before writing.

    ``connectors``: the organization's connectors by name, when the caller loaded them for many pipelines.
    """
    report = validate_pipeline_config(pipeline)
    steps = list(steps) if steps is not None else list(pipeline.steps.all())
    if connectors is None:
        connectors = _connectors_of(pipeline)
    for step in steps:
        report.extend(validate_step(step, siblings=steps, connectors=connectors, pipeline=pipeline))
    _check_unique_names(report, _where_pipeline(pipeline), steps)
    if report:
        # Graph and dataset rules assume well-formed steps; they would only repeat the errors above.
        return report
    report.extend(validate_step_graph(pipeline, steps))
    return report


def validate_step_set(pipeline: Pipeline, steps: Sequence[PipelineStep]) -> Report:
    """The rules over all steps: unique task ids and order, then no cycle and datasets produced upstream."""
    report = Report()
    _check_unique_names(report, _where_pipeline(pipeline), steps)
    if not report:
        report.extend(validate_step_graph(pipeline, steps))
    return report


def validate_step_graph(pipeline: Pipeline, steps: Sequence[PipelineStep]) -> Report:
    """Rules over the steps together: no cycle, every dataset a step reads is produced upstream."""
    report = Report()
    where = _where_pipeline(pipeline)
    names = {str(s.pk): s.name for s in steps}
    edges = upstreams([_node(s) for s in steps])
    cycle = find_cycle(edges)
    if cycle:
        # Start the report at the earliest step so the same cycle always reads the same way.
        order = {str(s.pk): s.order_index for s in steps}
        loop = cycle[:-1]
        first = min(range(len(loop)), key=lambda i: order[loop[i]])
        cycle = [*loop[first:], *loop[:first], loop[first]]
        path = " -> ".join(repr(names[i]) for i in cycle)
        report.add(where, "dependencies", f"dependency cycle: {path}", field="__all__")
        return report
    step_data = dataset_plan(steps, edges)
    for step_id, key, message in step_data[1]:
        report.add(f"{where} step {names[step_id]!r}", key, message, field="config")
    return report


def _check_unique_names(report: Report, where: str, steps) -> None:
    seen: dict[str, str] = {}
    for step in steps:
        task_id = step.task_id
        if task_id in seen:
            report.add(
                f"{where} step {step.name!r}",
                "name",
                f"gives task id {task_id!r}, the same as step {seen[task_id]!r}; rename one",
                field="name",
            )
        else:
            seen[task_id] = step.name
    orders = [s.order_index for s in steps]
    for duplicate in sorted({o for o in orders if orders.count(o) > 1}):
        report.add(where, "order_index", f"{duplicate} is used by more than one step", field="order_index")


def _node(step) -> StepNode:
    deps = step.dependencies if isinstance(step.dependencies, list) else []
    return StepNode(str(step.pk), step.order_index, bool(step.is_parallel), tuple(str(d) for d in deps))


def step_graph(steps: Sequence[PipelineStep]) -> dict[str, list[str]]:
    """Step id -> upstream step ids, by the documented rule."""
    return upstreams([_node(s) for s in steps])


def dataset_plan(steps, edges) -> tuple[dict[str, datasets.StepData], list[tuple[str, str, str]]]:
    """Each step's resolved input and output dataset names, and any problems found resolving them."""
    data = [datasets.StepData(str(s.pk), s.task_id, s.step_type, s.config) for s in steps]
    problems = datasets.resolve(data, edges)
    return {d.id: d for d in data}, problems
