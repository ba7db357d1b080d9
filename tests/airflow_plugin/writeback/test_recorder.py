"""The recorder on its own, on real PostgreSQL: identity keys, state rules, run outcomes, timeouts."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from airflow_plugin.writeback import delivery, recorder
from airflow_plugin.writeback.events import RunInfo, TaskInfo
from tests.airflow_plugin.conftest import RECORDER_DATABASES

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True, databases=RECORDER_DATABASES)]

T0 = datetime(2026, 3, 14, 9, 0, tzinfo=UTC)


@pytest.fixture
def two_steps(pipeline, make_step):
    return make_step("Extract orders", "extract", {}, 0), make_step("Load", "load", {}, 1)


def _run(pipeline, **extra):
    facts = {
        "dag_id": pipeline.dag_id,
        "run_id": "manual__2026-03-14T09:00:00+00:00",
        "run_type": "manual",
        "triggered_by": None,
        "triggering_user_name": None,
        "conf": {},
        "logical_date": T0,
        "data_interval_start": T0,
        "data_interval_end": T0,
        "run_after": T0,
        "start_date": T0,
        "end_date": None,
        "state": "running",
    }
    return RunInfo(**{**facts, **extra})


def _task(task_id, event, state, try_number=1, **extra):
    facts = {
        "task_id": task_id,
        "map_index": -1,
        "event": event,
        "state": state,
        "try_number": try_number,
        "max_tries": 1,
        "start_date": T0 + timedelta(seconds=try_number),
        "end_date": T0 + timedelta(seconds=try_number + 1) if state not in {"running", None} else None,
        "step_id": None,
        "step_type": None,
        "error": None,
        "error_type": None,
    }
    return TaskInfo(**{**facts, **extra})


@pytest.mark.parametrize(
    ("run_type", "triggered_by", "conf", "expected"),
    [
        ("scheduled", "timetable", {}, "scheduled"),
        ("backfill", "backfill", {}, "scheduled"),
        ("asset_triggered", "asset", {}, "scheduled"),
        ("manual", "ui", {}, "manual"),
        ("manual", "cli", {}, "manual"),
        ("manual", "rest_api", {}, "api"),
        ("manual", "rest_api", {"etl_trigger": "webhook"}, "webhook"),
    ],
)
def test_trigger_type_maps_airflow_runs(run_type, triggered_by, conf, expected):
    assert (
        recorder.trigger_type(RunInfo("d", "r", run_type=run_type, triggered_by=triggered_by, conf=conf))
        == expected
    )


def test_record_task_duplicate_and_late_events_keep_one_finished_row(pipeline, two_steps):
    from django_etl.runs.models import PipelineRun, TaskRun

    run = _run(pipeline)
    recorder.task_event(run, _task("extract_orders", "execute", "running"))
    recorder.task_event(run, _task("extract_orders", "success", "success"))
    recorder.task_event(run, _task("extract_orders", "success", "success"))
    recorder.task_event(run, _task("extract_orders", "execute", "running"))  # late, same try
    assert delivery.flush()
    assert PipelineRun.objects.count() == 1
    (task_run,) = TaskRun.objects.all()
    assert task_run.status == "success"
    assert task_run.pipeline_step == two_steps[0]
    assert task_run.run_started_at == T0
    assert task_run.completed_at == T0 + timedelta(seconds=2)


def test_record_task_new_try_after_failure_reopens_the_row(pipeline, two_steps):
    from django_etl.monitoring.models import Alert
    from django_etl.runs.models import TaskRun

    run = _run(pipeline)
    recorder.task_event(run, _task("load", "failure", "failed", error="disk full"))
    recorder.task_event(run, _task("load", "execute", "running", try_number=2))  # cleared and re-run
    assert delivery.flush()
    (task_run,) = TaskRun.objects.all()
    assert (task_run.status, task_run.retry_count, task_run.completed_at) == ("running", 1, None)
    (alert,) = Alert.objects.all()
    assert (alert.alert_type, alert.level, alert.metadata["error"]) == ("task_failed", "error", "disk full")


def test_record_run_never_matches_user_names_and_keeps_the_executed_version(pipeline, two_steps, user):
    from django_etl.runs.models import PipelineRun

    run = _run(pipeline, triggering_user_name=user.username)
    spec = {"pipeline": {"id": str(pipeline.pk), "version": "1.0.7", "spec_hash": "sha256:abc"}}
    recorder.task_event(run, _task("load", "execute", "running"), spec)
    recorder.run_started(replace(run, triggered_by="rest_api"), {})  # the scheduler's view, later
    assert delivery.flush()
    (pipeline_run,) = PipelineRun.objects.all()
    assert pipeline_run.triggered_by is None  # an Airflow user name is no Django account
    assert pipeline_run.context["triggering_user_name"] == user.username
    assert pipeline_run.trigger_type == "api"
    assert pipeline_run.context["pipeline_version"] == "1.0.7"
    assert pipeline_run.context["spec_hash"] == "sha256:abc"


def test_reconcile_marked_failed_with_unfinished_tasks_is_cancelled(pipeline, two_steps):
    from django_etl.runs.models import PipelineRun, TaskRun

    run = _run(pipeline, state="failed", end_date=T0 + timedelta(minutes=1))
    tasks = [
        _task("extract_orders", "reconcile", "failed"),
        _task("load", "reconcile", "skipped", try_number=0),
    ]
    recorder.run_finished(run, tasks, "Dag Run's state was manually set to `failed`.")
    assert delivery.flush()
    (pipeline_run,) = PipelineRun.objects.all()
    assert pipeline_run.status == "cancelled"
    assert pipeline_run.metrics["duration_seconds"] == 60
    assert sorted(TaskRun.objects.values_list("status", flat=True)) == ["failed", "skipped"]


def test_reconcile_stopped_run_failed_by_the_outcome_task_is_cancelled(pipeline, two_steps):
    """Marked failed with a final notify (a teardown): the run-outcome task fails it; the skipped step says why."""
    from django_etl.runs.models import PipelineRun

    run = _run(pipeline, state="failed", end_date=T0 + timedelta(minutes=1))
    tasks = [
        _task("extract_orders", "reconcile", "failed"),
        _task("load", "reconcile", "skipped", try_number=0),
        _task("etl__run_outcome", "reconcile", "failed"),
    ]
    recorder.run_finished(run, tasks, "task_failure")
    assert delivery.flush()
    assert PipelineRun.objects.get().status == "cancelled"


def test_reconcile_failed_step_without_skips_stays_failed(pipeline, two_steps):
    from django_etl.runs.models import PipelineRun

    run = _run(pipeline, state="failed", end_date=T0 + timedelta(minutes=1))
    tasks = [
        _task("extract_orders", "reconcile", "success"),
        _task("load", "reconcile", "failed"),
        _task("etl__run_outcome", "reconcile", "failed"),
    ]
    recorder.run_finished(run, tasks, "task_failure")
    assert delivery.flush()
    assert PipelineRun.objects.get().status == "failed"


def test_record_run_created_by_django_keeps_its_trigger_and_user(pipeline, two_steps, user):
    from django_etl.runs.models import PipelineRun

    run = _run(pipeline, triggered_by="rest_api", conf={"etl_trigger": "webhook"})
    PipelineRun.objects.create(
        pipeline=pipeline,
        airflow_dag_id=run.dag_id,
        airflow_run_id=run.run_id,
        trigger_type="api",
        triggered_by=user,
        started_at=T0,
        context={"origin": "django"},
    )
    recorder.run_started(run, {})
    assert delivery.flush()
    pipeline_run = PipelineRun.objects.get()
    assert (pipeline_run.trigger_type, pipeline_run.triggered_by) == ("api", user)


def test_reconcile_dagrun_timeout_is_timeout_with_critical_alert(pipeline, two_steps):
    from django_etl.monitoring.models import Alert
    from django_etl.runs.models import PipelineRun

    run = _run(pipeline, state="failed", end_date=T0 + timedelta(minutes=5))
    tasks = [_task("extract_orders", "reconcile", "success"), _task("load", "reconcile", "failed")]
    recorder.run_finished(run, tasks, "timed_out")
    recorder.run_finished(run, tasks, "timed_out")  # the listener fired twice
    assert delivery.flush()
    assert PipelineRun.objects.get().status == "timeout"
    levels = sorted(Alert.objects.values_list("alert_type", "level"))
    assert levels == [("pipeline_failed", "critical"), ("task_failed", "error")]
    killed = Alert.objects.get(alert_type="task_failed")
    assert "without reporting an error" in killed.message


def test_task_event_of_unknown_dag_records_nothing(pipeline):
    from django_etl.runs.models import PipelineRun

    recorder.task_event(_run(pipeline, dag_id="someone_elses_dag"), _task("t", "execute", "running"))
    assert delivery.flush()
    assert PipelineRun.objects.count() == 0


def test_deliver_does_not_wait_beyond_the_timeout(settings):
    settings.ETL_RECORDER_TIMEOUT = 0.5
    assert delivery.timeout_seconds() == 0.5  # read through the one settings module
    release = threading.Event()
    finished = threading.Event()

    def slow_write():
        release.wait(10)
        finished.set()

    assert delivery.deliver(slow_write) is None
    assert not finished.is_set()  # the caller went on while the write was still blocked
    release.set()
    assert delivery.flush()
    assert finished.is_set()


def test_task_event_with_database_on_a_closed_port_never_raises(pipeline, two_steps, caplog):
    from django.db import connections

    from airflow_plugin.writeback.delivery import ALIAS

    delivery.close_connection()
    settings_dict = connections.settings[ALIAS]
    original = settings_dict["PORT"]
    settings_dict["PORT"] = "1"  # nothing listens there
    connections[ALIAS].settings_dict["PORT"] = "1"
    caplog.set_level("WARNING", logger="airflow_plugin.writeback")
    try:
        recorder.task_event(_run(pipeline), _task("load", "execute", "running"))
        assert delivery.flush()
        assert any("write-back skipped" in r.getMessage() for r in caplog.records)
    finally:
        settings_dict["PORT"] = original
        connections[ALIAS].settings_dict["PORT"] = original
        delivery.close_connection()


def test_settle_open_run_closes_a_run_the_listener_left_open(pipeline, two_steps):
    from django_etl.monitoring.models import Alert
    from django_etl.runs.models import PipelineRun

    run = _run(pipeline)
    recorder.task_event(run, _task("extract_orders", "failure", "failed", error="boom"))
    finished = replace(run, state="failed", end_date=T0 + timedelta(minutes=1))
    recorder.run_closed(finished, "task_failure")
    recorder.run_closed(finished, "task_failure")
    assert delivery.flush()
    pipeline_run = PipelineRun.objects.get()
    assert (pipeline_run.status, pipeline_run.completed_at) == ("failed", T0 + timedelta(minutes=1))
    assert pipeline_run.metrics["tasks_by_state"] == {"failed": 1}
    assert Alert.objects.filter(alert_type="pipeline_failed", level="critical").count() == 1


def test_settle_open_run_leaves_a_settled_run_alone(pipeline, two_steps):
    from django_etl.runs.models import PipelineRun

    run = _run(pipeline, state="success", end_date=T0 + timedelta(minutes=1))
    recorder.run_finished(run, [_task("extract_orders", "reconcile", "success")], "success")
    assert delivery.flush()
    settled = PipelineRun.objects.get()
    recorder.run_closed(replace(run, state="failed"), "late and wrong")
    assert delivery.flush()
    again = PipelineRun.objects.get()
    assert (again.status, again.metrics) == ("success", settled.metrics)


def test_reconcile_keeps_the_log_read_where_the_try_ran(pipeline, two_steps):
    """Celery on several machines: the worker's callback read the try's log file, the scheduler cannot."""
    import os

    from airflow_plugin.writeback import task_logs
    from django_etl.runs.models import TaskRun

    run = _run(pipeline)
    path = task_logs.log_path(run.dag_id, run.run_id, "extract_orders", 1)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as handle:
        handle.write("read 120 rows from orders.csv\n")
    recorder.task_event(run, _task("extract_orders", "success", "success"))
    assert delivery.flush()
    os.unlink(path)  # the scheduler's machine has no such file
    finished = replace(run, state="success", end_date=T0 + timedelta(seconds=5))
    recorder.run_finished(finished, [_task("extract_orders", "reconcile", "success")])
    assert delivery.flush()
    logs = TaskRun.objects.get().logs
    assert "read 120 rows from orders.csv" in logs and not task_logs.is_summary(logs.split("\n", 1)[1])
