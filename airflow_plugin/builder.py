"""Compiled pipeline spec -> Airflow DAG. Runs at every parse of a generated file: no Django, no I/O.

The spec comes from django_etl.pipelines.dagspec (its shape is documented in docs/dag-mapping.md). Only
what Airflow needs to parse a DAG is imported here; operators import their heavy libraries in execute().
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import DAG, Param

from airflow_plugin.operators import OPERATORS
from airflow_plugin.outcome import RUN_OUTCOME_TASK_ID, RunOutcomeOperator
from airflow_plugin.writeback import DAG_CALLBACKS, TASK_CALLBACKS
from django_etl import conf
from django_etl.errors import ConfigurationError

SUPPORTED_FORMATS = {1}


class SpecError(ConfigurationError, ValueError):
    """The spec cannot become a DAG; the message names the pipeline and what is wrong."""


def build_dag(spec: dict[str, Any]) -> DAG:
    """One DAG whose tasks are the pipeline's steps, wired by the upstream lists the compiler resolved."""
    pipeline, settings = spec["pipeline"], spec["dag"]
    where = f"pipeline {pipeline.get('name')!r} ({pipeline.get('id')})"
    if spec.get("format") not in SUPPORTED_FORMATS:
        raise SpecError(
            f"{where}: spec format {spec.get('format')!r} is not one of {sorted(SUPPORTED_FORMATS)}"
        )
    timezone = pendulum.timezone(settings["timezone"])
    dag = DAG(
        dag_id=pipeline["dag_id"],
        dag_display_name=settings["display_name"],
        description=settings["description"] or None,
        doc_md=doc_md(spec),
        schedule=settings["schedule"],
        start_date=pendulum.parse(settings["start_date"], tz=timezone),
        catchup=settings["catchup"],
        max_active_runs=settings["max_active_runs"],
        dagrun_timeout=_seconds(settings["dagrun_timeout_seconds"]),
        default_args={"owner": settings["owner"]},
        tags=settings["tags"],
        params={name: _param(p) for name, p in settings["params"].items()},
        is_paused_upon_creation=settings["is_paused_upon_creation"],
        **_callbacks(DAG_CALLBACKS),
    )
    operator_pipeline = {
        key: pipeline[key] for key in ("id", "dag_id", "name", "organization", "organization_id", "version")
    }
    operator_pipeline["spec_hash"] = pipeline["spec_hash"]
    tasks = {}
    for step in spec["steps"]:
        operator_class = OPERATORS.get(step["step_type"])
        if operator_class is None:
            raise SpecError(f"{where} step {step['name']!r}: no operator for step type {step['step_type']!r}")
        tasks[step["task_id"]] = operator_class(
            task_id=step["task_id"],
            task_display_name=step["name"],
            step=step,
            pipeline=operator_pipeline,
            retries=step["retries"],
            retry_delay=timedelta(seconds=step["retry_delay_seconds"]),
            execution_timeout=_seconds(step["execution_timeout_seconds"]),
            dag=dag,
            **_callbacks(TASK_CALLBACKS),
        )
    for step in spec["steps"]:
        for upstream in step["upstream"]:
            if upstream not in tasks:
                raise SpecError(f"{where} step {step['name']!r}: upstream task {upstream!r} does not exist")
            tasks[upstream] >> tasks[step["task_id"]]
    _notify_as_teardown(spec, tasks, dag)
    return dag


def _callbacks(callbacks: dict[str, Any]) -> dict[str, Any]:
    """Write-back's callbacks, unless ETL_WRITEBACK is off (a benchmark's baseline: bench/e2e.py)."""
    return callbacks if conf.value("ETL_WRITEBACK") else {}


def _notify_as_teardown(spec: dict[str, Any], tasks: dict, dag: DAG) -> None:
    """A final notify step runs whatever happened upstream and does not decide the run's state.

    As a teardown task Airflow runs it once every upstream task is done (so ``when: failure`` and
    ``when: always`` can report a failed run), and leaves it out when it computes the DAG run's state, so a
    failed load still fails the run even though the notification after it succeeded. A run marked failed
    while steps were still to run would be settled as a success once the teardown is done (Airflow skipped
    those steps): the run-outcome task after the teardowns (airflow_plugin/outcome.py) fails it instead.
    """
    has_downstream = {upstream for step in spec["steps"] for upstream in step["upstream"]}
    teardowns = [
        tasks[step["task_id"]]
        for step in spec["steps"]
        if step["step_type"] == "notify" and step["task_id"] not in has_downstream and step["upstream"]
    ]
    for teardown in teardowns:
        teardown.as_teardown()
    if teardowns:
        outcome = RunOutcomeOperator(
            task_id=RUN_OUTCOME_TASK_ID,
            task_display_name="run outcome",
            ignore=[teardown.task_id for teardown in teardowns],
            dag=dag,
        )
        for teardown in teardowns:
            teardown >> outcome
        # A teardown too, so marking the run failed does not skip it (Airflow skips only normal tasks), and one
        # whose failure fails the run.
        outcome.as_teardown(on_failure_fail_dagrun=True)


def _seconds(value: int | None) -> timedelta | None:
    return None if value is None else timedelta(seconds=value)


def _param(spec: dict[str, Any]) -> Param:
    schema: dict[str, Any] = {}
    if spec.get("type"):
        # A param without a default may be left empty when the run is triggered.
        schema["type"] = spec["type"] if spec.get("default") is not None else [spec["type"], "null"]
    return Param(spec.get("default"), description=spec.get("description") or None, **schema)


def admin_url(spec: dict[str, Any]) -> str | None:
    """The pipeline's page in the Django admin, when the spec was compiled knowing where the admin is."""
    # Read where the DAG is parsed (ETL_ADMIN_URL): the generated file stays the same wherever the admin is.
    base = str(conf.value("ETL_ADMIN_URL") or "").rstrip("/")
    return f"{base}/admin/pipelines/pipeline/{spec['pipeline']['id']}/change/" if base else None


def doc_md(spec: dict[str, Any]) -> str:
    """The DAG's documentation page: what it is, which configuration it runs, and its steps."""
    pipeline, settings = spec["pipeline"], spec["dag"]
    lines = [
        f"### {pipeline['name']}",
        "",
        settings["description"] or "_No description._",
        "",
        "| | |",
        "|---|---|",
        f"| Pipeline id | `{pipeline['id']}` |",
        f"| Organization | {pipeline['organization_name']} (`{pipeline['organization']}`) |",
        f"| Version | `{pipeline['version']}` |",
        f"| Content hash | `{pipeline['spec_hash']}` |",
        f"| Status | {pipeline['status']} |",
        "",
        "Generated from Django by `generate_dags`; edit the pipeline in the Django admin, not here"
        + (f": [open it in the admin]({admin_url(spec)})." if admin_url(spec) else "."),
        "",
        "| # | Step | Type | Reads | Writes |",
        "|---|---|---|---|---|",
    ]
    for step in spec["steps"]:
        reads = ", ".join(step["inputs"]) or "—"
        lines.append(
            f"| {step['order_index']} | {step['name']} | {step['step_type']} | {reads} | {step['output'] or '—'} |"
        )
    return "\n".join(lines)
