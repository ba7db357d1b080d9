"""Spec dict -> Airflow DAG: every mapped setting, operators from the registry, callbacks, clear errors."""

from __future__ import annotations

import copy
from datetime import timedelta

import pendulum
import pytest

from airflow_plugin.builder import SpecError, build_dag
from airflow_plugin.operators import ExtractOperator, NotifyOperator, TransformOperator
from airflow_plugin.writeback import callbacks

PIPELINE_ID = "00000000-0000-0000-0000-00000000002a"


def as_list(value):
    return value if isinstance(value, list) else [value]


def step(task_id, step_type, upstream, **extra):
    entry = {
        "id": f"id-{task_id}",
        "name": task_id.replace("_", " ").title(),
        "task_id": task_id,
        "step_type": step_type,
        "order_index": extra.pop("order_index", 1),
        "config": {"k": task_id},
        "inputs": [],
        "output": None,
        "upstream": upstream,
        "retries": 2,
        "retry_delay_seconds": 30,
        "execution_timeout_seconds": 600,
    }
    entry.update(extra)
    return entry


SPEC = {
    "format": 1,
    "pipeline": {
        "id": PIPELINE_ID,
        "dag_id": "pipeline_0000000000000000000000000000002a",
        "name": "Orders daily",
        "organization": "acme",
        "organization_id": "00000000-0000-0000-0000-000000000007",
        "organization_name": "Acme",
        "version": "1.0.4",
        "status": "paused",
        "spec_hash": "sha256:abc",
    },
    "dag": {
        "display_name": "Orders daily",
        "description": "Orders, every night.",
        "tags": ["acme", "extract", "version:1.0.4"],
        "owner": "data-team",
        "schedule": "0 3 * * *",
        "start_date": "2024-02-01",
        "timezone": "Europe/Paris",
        "catchup": True,
        "max_active_runs": 2,
        "dagrun_timeout_seconds": 7200,
        "is_paused_upon_creation": True,
        "params": {"day": {"default": None, "type": "string", "description": "Day to reload"}},
    },
    "steps": [
        step("extract_orders", "extract", [], output="extract_orders"),
        step(
            "clean",
            "transform",
            ["extract_orders"],
            inputs=["extract_orders"],
            execution_timeout_seconds=None,
        ),
        step("notify", "notify", ["clean", "extract_orders"], retries=0),
    ],
}


def test_build_dag_maps_pipeline_settings():
    dag = build_dag(SPEC)
    assert dag.dag_id == SPEC["pipeline"]["dag_id"]
    assert dag.dag_display_name == "Orders daily"
    assert dag.description == "Orders, every night."
    assert "1.0.4" in dag.doc_md and "sha256:abc" in dag.doc_md
    assert dag.tags == {"acme", "extract", "version:1.0.4"}
    assert dag.start_date == pendulum.datetime(2024, 2, 1, tz="Europe/Paris")
    assert dag.timezone.name == "Europe/Paris"
    assert dag.catchup is True
    assert dag.max_active_runs == 2
    assert dag.dagrun_timeout == timedelta(hours=2)
    assert dag.is_paused_upon_creation is True
    assert dag.params["day"] is None
    for name, callback in callbacks.DAG_CALLBACKS.items():
        assert as_list(getattr(dag, name)) == as_list(callback), name


def test_build_dag_one_operator_per_step_from_the_registry():
    dag = build_dag(SPEC)
    extract, clean, notify = (dag.get_task(t) for t in ("extract_orders", "clean", "notify"))
    assert (type(extract), type(clean), type(notify)) == (ExtractOperator, TransformOperator, NotifyOperator)
    assert clean.step == SPEC["steps"][1]
    assert clean.pipeline == {
        "id": PIPELINE_ID,
        "dag_id": SPEC["pipeline"]["dag_id"],
        "name": "Orders daily",
        "organization": "acme",
        "organization_id": "00000000-0000-0000-0000-000000000007",
        "version": "1.0.4",
        "spec_hash": "sha256:abc",
    }
    assert clean.task_display_name == "Clean"
    assert clean.owner == "data-team"
    assert (clean.retries, clean.retry_delay, clean.execution_timeout) == (2, timedelta(seconds=30), None)
    assert notify.retries == 0 and notify.execution_timeout == timedelta(minutes=10)
    assert notify.upstream_task_ids == {"clean", "extract_orders"}
    assert extract.upstream_task_ids == set()


def test_build_dag_attaches_task_callbacks_to_every_task():
    dag = build_dag(SPEC)
    assert set(callbacks.TASK_CALLBACKS) == {
        "on_execute_callback",
        "on_success_callback",
        "on_failure_callback",
        "on_retry_callback",
    }
    for task in dag.tasks:
        if task.task_id == "etl__run_outcome":  # no pipeline step: write-back does not record it
            continue
        for name, callback in callbacks.TASK_CALLBACKS.items():
            assert as_list(getattr(task, name)) == as_list(callback), (task.task_id, name)


def test_build_dag_without_writeback_attaches_no_callback(settings):
    settings.ETL_WRITEBACK = False
    dag = build_dag(SPEC)
    for name in callbacks.DAG_CALLBACKS:
        assert getattr(dag, name) in (None, []), name
    for task in dag.tasks:
        for name in callbacks.TASK_CALLBACKS:
            assert getattr(task, name) in (None, []), (task.task_id, name)


def test_plugin_without_writeback_registers_only_the_warm_up(tmp_path):
    import os
    import subprocess
    import sys

    code = (
        "from airflow_plugin.plugin import DjangoEtlPlugin as P; (l,) = P.listeners; "
        "print(hasattr(l, 'on_starting'), hasattr(l, 'on_task_instance_success'), hasattr(l, 'on_dag_run_success'))"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_SETTINGS")}
    seen = {}
    for flag in ("false", "true"):
        result = subprocess.run(
            [sys.executable, "-c", code], env={**env, "ETL_WRITEBACK": flag}, capture_output=True, text=True
        )
        assert result.returncode == 0, result.stderr
        seen[flag] = result.stdout.split()
    assert seen == {"false": ["True", "False", "False"], "true": ["True", "True", "True"]}


def test_build_dag_manual_schedule_and_no_params():
    spec = copy.deepcopy(SPEC)
    spec["dag"].update(schedule=None, params={}, description="", dagrun_timeout_seconds=None)
    dag = build_dag(spec)
    assert type(dag.timetable).__name__ == "NullTimetable"
    assert dag.description is None
    assert dag.dagrun_timeout is None


def test_build_dag_unknown_step_type_names_the_step():
    spec = copy.deepcopy(SPEC)
    spec["steps"][1]["step_type"] = "teleport"
    with pytest.raises(
        SpecError, match=r"pipeline 'Orders daily' .* step 'Clean': no operator for step type"
    ):
        build_dag(spec)


def test_build_dag_unknown_upstream_names_the_step():
    spec = copy.deepcopy(SPEC)
    spec["steps"][2]["upstream"] = ["ghost"]
    with pytest.raises(SpecError, match="step 'Notify': upstream task 'ghost' does not exist"):
        build_dag(spec)


def test_build_dag_refuses_unknown_spec_format():
    with pytest.raises(SpecError, match="spec format 99"):
        build_dag({**SPEC, "format": 99})


def test_build_dag_final_notify_is_a_teardown_that_runs_after_failures():
    dag = build_dag(SPEC)
    notify = dag.get_task("notify")
    assert notify.is_teardown and not notify.on_failure_fail_dagrun
    assert notify.trigger_rule == "all_done_setup_success"
    assert not dag.get_task("clean").is_teardown
    # The run-outcome task after the teardown fails a run that was stopped (marked failed) before its end.
    outcome = dag.get_task("etl__run_outcome")
    assert outcome.upstream_task_ids == {"notify"} and outcome.is_teardown and outcome.on_failure_fail_dagrun


def test_build_dag_notify_with_downstream_steps_keeps_default_trigger_rule():
    spec = copy.deepcopy(SPEC)
    spec["steps"][1]["upstream"] = ["notify"]
    spec["steps"][2]["upstream"] = ["extract_orders"]
    spec["steps"][1], spec["steps"][2] = spec["steps"][2], spec["steps"][1]
    notify = build_dag(spec).get_task("notify")
    assert not notify.is_teardown and notify.trigger_rule == "all_success"
