"""Turn Airflow objects (callback contexts, task instances, DAG runs) into the typed records the recorder stores.

Nothing here imports Django, and nothing here touches a database: the listener calls these in the scheduler's
own thread, then hands the plain records to the worker thread (airflow_plugin.writeback.delivery).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class RunInfo:
    """The identity and facts of one DAG run, as Airflow reports them."""

    dag_id: str
    run_id: str
    run_type: str | None = None
    triggered_by: str | None = None
    triggering_user_name: str | None = None
    conf: dict[str, Any] = field(default_factory=dict)
    logical_date: Any = None
    data_interval_start: Any = None
    data_interval_end: Any = None
    run_after: Any = None
    start_date: Any = None
    end_date: Any = None
    state: str | None = None
    # What reported it: "dag_run_running" from the scheduler's listener (a re-run reopens the row), else None.
    event: str | None = None


@dataclass(frozen=True, slots=True)
class TaskInfo:
    """One task instance's state and timing; ``event`` names what happened (execute, success, retry, …)."""

    task_id: str
    event: str = "reconcile"
    state: str | None = None
    map_index: int = -1
    try_number: int = 0
    max_tries: int = 0
    start_date: Any = None
    end_date: Any = None
    step_id: str | None = None
    step_type: str | None = None
    error: str | None = None
    error_type: str | None = None


def _value(obj: Any, name: str, default: Any = None) -> Any:
    value = getattr(obj, name, default)
    return default if value is None else value


def _state(value: Any) -> str | None:
    if value is None:
        return None
    return str(getattr(value, "value", value))


def run_info(dag_run: Any, *, event: str | None = None) -> RunInfo:
    """The identity and facts of a DAG run, from a scheduler DagRun or a task-side DagRun model."""
    triggered_by = getattr(dag_run, "triggered_by", None)
    return RunInfo(
        dag_id=dag_run.dag_id,
        run_id=dag_run.run_id,
        run_type=_state(_value(dag_run, "run_type")),
        triggered_by=_state(triggered_by),
        triggering_user_name=_value(dag_run, "triggering_user_name"),
        conf=dict(_value(dag_run, "conf", {}) or {}),
        logical_date=_value(dag_run, "logical_date"),
        data_interval_start=_value(dag_run, "data_interval_start"),
        data_interval_end=_value(dag_run, "data_interval_end"),
        run_after=_value(dag_run, "run_after"),
        start_date=_value(dag_run, "start_date"),
        end_date=_value(dag_run, "end_date"),
        state=_state(_value(dag_run, "state")),
        event=event,
    )


def spec_of_task(task: Any) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """(step, pipeline) dicts an EtlStepOperator carries, or (None, None) for any other task."""
    step = getattr(task, "step", None)
    pipeline = getattr(task, "pipeline", None)
    if not isinstance(step, dict):
        return None, pipeline if isinstance(pipeline, dict) else None
    return step, pipeline if isinstance(pipeline, dict) else None


def steps_map_of_dag(dag: Any) -> dict[str, dict[str, Any]]:
    """task_id -> the step facts the recorder needs later in the scheduler, where only task ids are at hand."""
    steps: dict[str, dict[str, Any]] = {}
    for task in getattr(dag, "tasks", []) or []:
        step, _ = spec_of_task(task)
        if step is None:
            continue
        step = {**step, "step_type": step.get("step_type") or getattr(task, "step_type", "")}
        steps[task.task_id] = step_facts(step, getattr(task, "upstream_task_ids", []))
    return steps


def steps_map_of_spec(spec_steps: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The same map from a compiled spec's ``steps`` (what each operator's ``step`` dict is made from)."""
    return {step["task_id"]: step_facts(step, step.get("upstream")) for step in spec_steps}


def step_facts(step: dict[str, Any], upstream: Any) -> dict[str, Any]:
    return {
        "id": str(step.get("id")),
        "name": step.get("name"),
        "step_type": step.get("step_type") or "",
        "inputs": list(step.get("inputs") or []),
        "output": step.get("output"),
        "upstream": sorted(upstream or []),
    }


def task_info(ti: Any, *, event: str, error: Any = None) -> TaskInfo:
    """One task instance's state and timing, from a callback's, the task runner's or the scheduler's ti."""
    task = getattr(ti, "task", None)
    step, _ = spec_of_task(task) if task is not None else (None, None)
    max_tries = _value(ti, "max_tries", None)
    if max_tries is None and task is not None:
        max_tries = _value(task, "retries", 0)
    return TaskInfo(
        task_id=ti.task_id,
        map_index=int(_value(ti, "map_index", -1)),
        event=event,
        state=_state(_value(ti, "state")),
        try_number=int(_value(ti, "try_number", 0)),
        max_tries=int(max_tries or 0),
        start_date=_value(ti, "start_date"),
        end_date=_value(ti, "end_date"),
        step_id=str(step["id"]) if step and step.get("id") else None,
        step_type=(step or {}).get("step_type") or (getattr(task, "step_type", None) or None),
        error=_error_text(error),
        error_type=type(error).__name__ if isinstance(error, BaseException) else None,
    )


def _error_text(error: Any) -> str | None:
    if error is None:
        return None
    text = str(error) or type(error).__name__
    return text[:2000]


def pipeline_facts(pipeline: dict[str, Any] | None) -> dict[str, Any]:
    """The spec facts a run executed (version, spec hash): only the task side knows them for sure."""
    if not pipeline:
        return {}
    facts = {key: pipeline.get(key) for key in ("id", "version", "spec_hash") if pipeline.get(key)}
    if "id" in facts:
        facts["id"] = str(facts["id"])
    return facts


# ---------------------------------------------------------------- from Airflow's REST API (the catch-up)
def run_info_from_api(dag_run: dict[str, Any]) -> RunInfo:
    """A DAG run as ``GET /api/v2/dags/{dag_id}/dagRuns`` describes it (the same facts the listener reads)."""
    return RunInfo(
        dag_id=dag_run["dag_id"],
        run_id=dag_run["dag_run_id"],
        run_type=dag_run.get("run_type"),
        triggered_by=dag_run.get("triggered_by"),
        triggering_user_name=dag_run.get("triggering_user_name"),
        conf=dict(dag_run.get("conf") or {}),
        logical_date=parse_when(dag_run.get("logical_date")),
        data_interval_start=parse_when(dag_run.get("data_interval_start")),
        data_interval_end=parse_when(dag_run.get("data_interval_end")),
        run_after=parse_when(dag_run.get("run_after")),
        start_date=parse_when(dag_run.get("start_date")),
        end_date=parse_when(dag_run.get("end_date")),
        state=dag_run.get("state"),
    )


def task_info_from_api(
    ti: dict[str, Any], *, first_start: Any = None, event: str = "reconcile", error: str | None = None
) -> TaskInfo:
    """A task instance as the REST API lists it; ``first_start``: the start of its first try, when it had more.

    The API does not say why a try failed (no exception type, no message): what only the task knew stays
    unknown (docs/write-back.md, "Outages and catch-up").
    """
    start = parse_when(ti.get("start_date"))
    first = parse_when(first_start)
    return TaskInfo(
        task_id=ti["task_id"],
        event=event,
        state=ti.get("state"),
        map_index=int(ti.get("map_index", -1) if ti.get("map_index") is not None else -1),
        try_number=int(ti.get("try_number") or 0),
        max_tries=int(ti.get("max_tries") or 0),
        start_date=min(start, first) if start and first else start or first,
        end_date=parse_when(ti.get("end_date")),
        error=error,
    )


def parse_when(value: Any) -> Any:
    """An ISO 8601 timestamp from the API as an aware datetime (``Z`` included); None stays None."""
    if not isinstance(value, str) or not value:
        return value
    from datetime import datetime

    return datetime.fromisoformat(value.replace("Z", "+00:00"))
