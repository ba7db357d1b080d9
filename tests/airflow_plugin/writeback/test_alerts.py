"""Alerts through real DAG runs (dag.test()): one alert per problem, resolved by a later success or a re-run."""

from __future__ import annotations

import pytest

from tests.airflow_plugin.conftest import RECORDER_DATABASES
from tests.support.receivers import smtp_sink, webhook_receiver  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True, databases=RECORDER_DATABASES)]


def _alerts(spec, alert_type):
    from django_etl.monitoring.models import Alert

    return list(
        Alert.objects.filter(alert_type=alert_type, pipeline_run__airflow_dag_id=spec["dag_id"]).order_by(
            "created_at"
        )
    )


def _set_behaviour(spec, step_name, behaviour):
    for step in spec["steps"]:
        if step["name"] == step_name:
            step["behaviour"] = behaviour


def test_alerts_repeated_failures_update_one_alert_and_success_resolves_it(scripted_pipeline, run_dag):
    from django_etl.runs.models import PipelineRun

    spec = scripted_pipeline(
        [("extract orders", "extract", [], "ok", 0), ("clean", "transform", ["extract orders"], "fail", 0)]
    )
    run_dag(spec)
    run_dag(spec)
    runs = list(PipelineRun.objects.filter(airflow_dag_id=spec["dag_id"]).order_by("started_at"))
    assert [r.status for r in runs] == ["failed", "failed"]
    [task_alert] = _alerts(spec, "task_failed")
    assert task_alert.occurrences == 2 and not task_alert.is_resolved
    assert task_alert.pipeline_run_id == runs[1].pk  # the latest run
    assert task_alert.last_seen_at > task_alert.created_at
    [run_alert] = _alerts(spec, "pipeline_failed")
    assert run_alert.occurrences == 2 and run_alert.level == "critical"

    _set_behaviour(spec, "clean", "ok")
    run_dag(spec)
    [task_alert] = _alerts(spec, "task_failed")
    [run_alert] = _alerts(spec, "pipeline_failed")
    for alert in (task_alert, run_alert):
        assert alert.is_resolved and alert.resolved_at is not None
        assert alert.metadata["resolution"]["how"] == "later_success"
        assert alert.occurrences == 2  # the success added no occurrence

    # The next failure is a new problem: a new alert, which names the one it follows.
    _set_behaviour(spec, "clean", "fail")
    run_dag(spec)
    old, new = _alerts(spec, "task_failed")
    assert old.pk == task_alert.pk and old.is_resolved
    assert not new.is_resolved and new.occurrences == 1
    assert new.metadata["recurrence_of"] == str(old.pk)


def test_alerts_retry_then_final_failure_is_one_escalated_alert(scripted_pipeline, run_dag):
    spec = scripted_pipeline([("extract orders", "extract", [], "fail_retryable", 1)])
    run_dag(spec)
    [alert] = _alerts(spec, "task_failed")
    assert alert.occurrences == 2  # try 1 (will be retried), try 2 (for good)
    assert alert.level == "error" and alert.metadata["escalated_from"] == "warning"
    assert alert.metadata["final"] is True and alert.metadata["try_number"] == 2
    assert "failed for good on try 2" in alert.message


def test_alerts_retry_warning_resolved_by_the_successful_try(scripted_pipeline, run_dag):
    spec = scripted_pipeline([("extract orders", "extract", [], "fail_once", 1)])
    run_dag(spec)
    [alert] = _alerts(spec, "task_failed")
    assert alert.level == "warning"
    assert alert.is_resolved and alert.metadata["resolution"]["how"] == "later_success"


def test_alerts_failed_check_resolved_when_it_passes(scripted_pipeline, run_dag):
    spec = scripted_pipeline(
        [("extract orders", "extract", [], "ok", 0), ("check", "validate", ["extract orders"], "dq_fail", 0)]
    )
    run_dag(spec)
    run_dag(spec)
    [quality] = _alerts(spec, "data_quality")
    assert quality.occurrences == 2 and quality.metadata["name"] == "amount_not_null"
    _set_behaviour(spec, "check", "ok")
    run_dag(spec)
    [quality] = _alerts(spec, "data_quality")
    assert quality.is_resolved and quality.metadata["resolution"]["how"] == "condition_cleared"


def test_alerts_cleared_and_rerun_task_supersedes_its_failure(scripted_pipeline, run_dag):
    """Airflow clears a failed task and runs it again (try 2 of the same run): its failure alerts are over.

    The clear itself happens in Airflow's API server; what reaches write-back is the new try's start and the
    run going back to running, replayed here through the recorder as the listener reports them.
    """
    from airflow_plugin.writeback import recorder
    from airflow_plugin.writeback.events import RunInfo, TaskInfo
    from django_etl.runs.models import PipelineRun

    spec = scripted_pipeline(
        [("extract orders", "extract", [], "ok", 0), ("clean", "transform", ["extract orders"], "fail", 0)]
    )
    run_dag(spec)
    pipeline_run = PipelineRun.objects.get(airflow_dag_id=spec["dag_id"])
    clean = next(s for s in spec["steps"] if s["name"] == "clean")
    run = RunInfo(
        dag_id=spec["dag_id"], run_id=pipeline_run.airflow_run_id, state="running", event="dag_run_running"
    )
    recorder.record_run(run)
    recorder.record_task(
        run,
        TaskInfo(
            task_id=clean["task_id"], event="execute", state="running", try_number=2, step_id=clean["id"]
        ),
    )
    [task_alert] = _alerts(spec, "task_failed")
    [run_alert] = _alerts(spec, "pipeline_failed")
    for alert in (task_alert, run_alert):
        assert alert.is_resolved
        assert alert.metadata["resolution"]["how"] == "superseded"


def test_alerts_duplicate_failure_events_count_once(scripted_pipeline, run_dag):
    """The callback, the listener and reconciliation all report a failure: one occurrence."""
    from airflow_plugin.writeback import recorder
    from airflow_plugin.writeback.events import RunInfo, TaskInfo
    from django_etl.runs.models import PipelineRun

    spec = scripted_pipeline([("clean", "transform", [], "fail", 0)])
    run_dag(spec)
    pipeline_run = PipelineRun.objects.get(airflow_dag_id=spec["dag_id"])
    clean = spec["steps"][0]
    run = RunInfo(dag_id=spec["dag_id"], run_id=pipeline_run.airflow_run_id, state="failed")
    for _ in range(2):
        recorder.record_task(
            run,
            TaskInfo(
                task_id=clean["task_id"], event="failure", state="failed", try_number=1, step_id=clean["id"]
            ),
        )
    [alert] = _alerts(spec, "task_failed")
    assert alert.occurrences == 1


def test_alerts_of_a_failed_run_reach_the_rules_receivers_once(
    scripted_pipeline,
    run_dag,
    organization,
    user,
    smtp_sink,  # noqa: F811
    webhook_receiver,  # noqa: F811
):
    """A real failed run: its alerts wait in the outbox (write-back sends nothing); the drain delivers each
    new alert once by email and webhook; the next failing run updates the alerts and sends nothing again."""
    from django_etl.connectors.models import Connector
    from django_etl.monitoring.models import AlertDelivery, AlertRule
    from django_etl.monitoring.routing import deliver_alerts

    hooks = Connector.objects.create(
        name="hooks",
        connector_type="api",
        organization=organization,
        created_by=user,
        config={"base_url": webhook_receiver.base_url, "auth": "none", "max_retries": 0},
    )
    AlertRule.objects.create(
        organization=organization,
        name="on call",
        min_level="error",
        alert_types=["task_failed"],
        email_recipients="oncall@example.com",
        webhook_connector=hooks,
        webhook_format="slack",
    )
    spec = scripted_pipeline([("clean", "transform", [], "fail", 0)])
    run_dag(spec)
    assert smtp_sink.messages == [] and webhook_receiver.posts == []
    assert AlertDelivery.objects.filter(status="pending").count() == 2
    assert deliver_alerts().sent == 2
    [mail] = smtp_sink.messages
    assert mail.recipients == ["oncall@example.com"] and "Task Failed" in mail.message["Subject"]
    assert "table does not exist" in mail.message.get_content()
    [post] = webhook_receiver.posts
    assert "Task Failed" in post["body"]["text"]

    run_dag(spec)
    [alert] = _alerts(spec, "task_failed")
    assert alert.occurrences == 2
    assert deliver_alerts().sent == 0 and len(smtp_sink.messages) == 1
