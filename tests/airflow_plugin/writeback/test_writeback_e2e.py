"""End to end through Airflow's dag.test(), with Django on PostgreSQL: what a run leaves in Django."""

from __future__ import annotations

import pytest

from tests.airflow_plugin.conftest import RECORDER_DATABASES

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True, databases=RECORDER_DATABASES)]

DIAMOND = [
    ("extract orders", "extract", [], "ok", 0),
    ("extract customers", "extract", [], "ok", 0),
    ("join", "transform", ["extract orders", "extract customers"], "ok", 0),
    ("check", "validate", ["join"], "ok", 0),
    ("load", "load", ["check"], "ok", 0),
]


def _rows(spec):
    from django_etl.lineage.models import DataLineage
    from django_etl.monitoring.models import Alert
    from django_etl.runs.models import PipelineRun, TaskRun

    runs = list(PipelineRun.objects.filter(airflow_dag_id=spec["dag_id"]))
    tasks = {t.pipeline_step.name: t for t in TaskRun.objects.filter(pipeline_run__in=runs)}
    alerts = list(Alert.objects.filter(pipeline_run__in=runs).order_by("created_at"))
    edges = list(DataLineage.objects.filter(target_task__pipeline_run__in=runs))
    return runs, tasks, alerts, edges


def test_writeback_success_records_run_tasks_and_lineage(scripted_pipeline, run_dag):
    spec = scripted_pipeline(DIAMOND)
    run_dag(spec)
    runs, tasks, alerts, edges = _rows(spec)
    assert len(runs) == 1
    run = runs[0]
    assert run.status == "success"
    assert run.completed_at is not None
    assert run.trigger_type == "manual"
    assert run.context["pipeline_version"] == spec["pipeline"]["version"]
    assert run.context["spec_hash"] == spec["pipeline"]["spec_hash"]
    assert run.metrics["tasks_by_state"] == {"success": 5}
    assert run.metrics["rows_extracted"] == 20
    assert {name: t.status for name, t in tasks.items()} == {name: "success" for name, *_ in DIAMOND}
    assert all(t.retry_count == 0 and t.started_at and t.completed_at for t in tasks.values())
    assert tasks["join"].input_data["datasets"][0]["rows"] == 10
    assert tasks["join"].metrics["rows_out"] == 10
    assert tasks["load"].logs  # a log tail or a structured summary
    assert alerts == []
    pairs = {
        (e.source_task.pipeline_step.name, e.target_task.pipeline_step.name, e.relationship_type)
        for e in edges
    }
    assert pairs == {
        ("extract orders", "join", "filtered"),
        ("extract customers", "join", "filtered"),
        ("join", "check", "direct"),
    }
    edge = next(e for e in edges if e.target_task.pipeline_step.name == "check")
    assert edge.metadata["datasets"] == ["join_out"]
    assert list(edge.metadata["columns"]) == ["id"]  # a validate step hands its input on column for column


def test_writeback_retry_then_success_counts_one_retry(scripted_pipeline, run_dag):
    spec = scripted_pipeline(
        [("extract orders", "extract", [], "fail_once", 1), ("load", "load", ["extract orders"], "ok", 0)]
    )
    run_dag(spec)
    runs, tasks, alerts, _ = _rows(spec)
    assert [r.status for r in runs] == ["success"]
    assert len(tasks) == 2
    assert tasks["extract orders"].status == "success"
    assert tasks["extract orders"].retry_count == 1
    assert [(a.alert_type, a.level) for a in alerts] == [("task_failed", "warning")]
    assert alerts[0].task_run_id == tasks["extract orders"].id
    assert alerts[0].metadata["try_number"] == 1
    assert "first try" in alerts[0].message
    from django_etl.runs.logview import split_tries

    logs = split_tries(tasks["extract orders"].logs)
    assert sorted(logs) == [1, 2]  # every try keeps its own log
    assert "first try" in logs[1] and "first try" not in logs[2]


def test_writeback_final_failure_alerts_and_marks_downstream(scripted_pipeline, run_dag):
    spec = scripted_pipeline(
        [
            ("extract orders", "extract", [], "ok", 0),
            ("clean", "transform", ["extract orders"], "fail", 0),
            ("check", "validate", ["clean"], "ok", 0),
            ("load", "load", ["check"], "ok", 0),
        ]
    )
    run_dag(spec)
    runs, tasks, alerts, _ = _rows(spec)
    assert [r.status for r in runs] == ["failed"]
    assert {n: t.status for n, t in tasks.items()} == {
        "extract orders": "success",
        "clean": "failed",
        "check": "upstream_failed",
        "load": "upstream_failed",
    }
    kinds = sorted((a.alert_type, a.level) for a in alerts)
    assert kinds == [("pipeline_failed", "critical"), ("task_failed", "error")]
    failed = next(a for a in alerts if a.alert_type == "task_failed")
    assert "table does not exist" in failed.message
    assert failed.task_run_id == tasks["clean"].id
    assert runs[0].metrics["tasks_by_state"] == {"success": 1, "failed": 1, "upstream_failed": 2}


def test_writeback_data_quality_failure_raises_quality_alert(scripted_pipeline, run_dag):
    spec = scripted_pipeline(
        [
            ("extract orders", "extract", [], "ok", 0),
            ("check", "validate", ["extract orders"], "dq_fail", 0),
            ("load", "load", ["check"], "ok", 0),
        ]
    )
    run_dag(spec)
    runs, tasks, alerts, _ = _rows(spec)
    assert runs[0].status == "failed"
    quality = [a for a in alerts if a.alert_type == "data_quality"]
    assert len(quality) == 1
    assert quality[0].level == "error"
    assert quality[0].metadata["failing_count"] == 3
    assert quality[0].metadata["name"] == "amount_not_null"
    assert quality[0].task_run_id == tasks["check"].id
    assert tasks["check"].metrics["checks_failed"] == 1


def test_writeback_duplicate_events_create_no_duplicates(scripted_pipeline, run_dag):
    from airflow.listeners.listener import get_listener_manager

    from airflow_plugin import writeback

    spec = scripted_pipeline(
        [
            ("extract orders", "extract", [], "fail_once", 1),
            ("clean", "transform", ["extract orders"], "fail", 0),
        ],
        callback_copies=2,  # every task callback attached twice: each event is delivered twice
    )
    dag_run = run_dag(spec)
    before = _counts(spec)
    # The real listener, through Airflow's own listener manager, sees the run end a second time.
    get_listener_manager().hook.on_dag_run_failed(dag_run=dag_run, msg="task_failure")
    assert writeback.flush(timeout=60)
    after = _counts(spec)
    assert before == after
    assert before == {"runs": 1, "tasks": 2, "alerts": 3, "edges": 1}


def _counts(spec):
    runs, tasks, alerts, edges = _rows(spec)
    return {"runs": len(runs), "tasks": len(tasks), "alerts": len(alerts), "edges": len(edges)}


@pytest.fixture
def django_db_switch(monkeypatch):
    """Lets a scripted task refuse and end connections to the Django test database, and undoes it afterwards."""
    import psycopg
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        keep_pid = cursor.fetchone()[0]
    admin_url = connection.settings_dict.copy()
    url = f"postgresql://{admin_url['USER'] or 'postgres'}@{admin_url['HOST'] or '127.0.0.1'}:{admin_url['PORT'] or 5432}/postgres"
    monkeypatch.setenv("ETL_WRITEBACK_DB_NAME", connection.settings_dict["NAME"])
    monkeypatch.setenv("ETL_WRITEBACK_KEEP_PID", str(keep_pid))
    monkeypatch.setenv("ETL_WRITEBACK_ADMIN_URL", url)
    yield
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f'ALTER DATABASE "{connection.settings_dict["NAME"]}" ALLOW_CONNECTIONS true')


def test_writeback_django_db_unreachable_does_not_fail_tasks(
    scripted_pipeline, run_dag, django_db_switch, caplog
):
    spec = scripted_pipeline(
        [
            ("extract orders", "extract", [], "ok", 0),
            ("cut", "transform", ["extract orders"], "cut_db", 0),
            ("work", "transform", ["cut"], "ok", 0),
            ("restore", "transform", ["work"], "restore_db", 0),
            ("load", "load", ["restore"], "ok", 0),
        ]
    )
    caplog.set_level("WARNING", logger="airflow_plugin.writeback")
    dag_run = run_dag(spec)
    assert str(getattr(dag_run.state, "value", dag_run.state)) == "success"
    skipped = [r.getMessage() for r in caplog.records if "write-back skipped (record_task)" in r.getMessage()]
    assert len(skipped) >= 2, "the database was not really unreachable during the tasks' events"
    runs, tasks, alerts, edges = _rows(spec)
    assert [r.status for r in runs] == ["success"]
    assert {n: t.status for n, t in tasks.items()} == {n: "success" for n in tasks} and len(tasks) == 5
    assert tasks["work"].completed_at is not None and tasks["work"].metrics["rows_out"] == 10
    assert alerts == []
    assert len(edges) == 4


def test_writeback_diamond_with_failing_branch_records_each_step_once(scripted_pipeline, run_dag):
    spec = scripted_pipeline(
        [
            ("extract orders", "extract", [], "ok", 0),
            ("by region", "transform", ["extract orders"], "ok", 0),
            ("by product", "transform", ["extract orders"], "fail", 0),
            ("combine", "transform", ["by region", "by product"], "ok", 0),
            ("load", "load", ["combine"], "ok", 0),
        ]
    )
    run_dag(spec)
    runs, tasks, alerts, edges = _rows(spec)
    assert len(runs) == 1 and runs[0].status == "failed"
    assert {n: t.status for n, t in tasks.items()} == {
        "extract orders": "success",
        "by region": "success",
        "by product": "failed",
        "combine": "upstream_failed",
        "load": "upstream_failed",
    }
    assert sorted((a.alert_type, a.level) for a in alerts) == [
        ("pipeline_failed", "critical"),
        ("task_failed", "error"),
    ]
    assert "by_product" in next(a for a in alerts if a.alert_type == "pipeline_failed").message
    pairs = {(e.source_task.pipeline_step.name, e.target_task.pipeline_step.name) for e in edges}
    assert pairs == {("extract orders", "by region"), ("extract orders", "by product")}


def test_writeback_task_over_its_timeout_marks_timeout(scripted_pipeline, run_dag):
    spec = scripted_pipeline(
        [("extract orders", "extract", [], "ok", 0), ("slow", "transform", ["extract orders"], "hang", 0)]
    )
    spec["steps"][1]["timeout"] = 1
    run_dag(spec)
    runs, tasks, alerts, _ = _rows(spec)
    assert tasks["slow"].status == "timeout"
    assert runs[0].status == "timeout"
    assert ("pipeline_failed", "critical") in {(a.alert_type, a.level) for a in alerts}


def test_writeback_state_set_from_the_api_reaches_the_task_run(scripted_pipeline, run_dag):
    from airflow.listeners.listener import get_listener_manager
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    from airflow_plugin import writeback

    spec = scripted_pipeline([("extract orders", "extract", [], "fail", 0)])
    dag_run = run_dag(spec)
    with create_session() as session:
        ti = session.query(TaskInstance).filter_by(dag_id=spec["dag_id"], run_id=dag_run.run_id).one()
        ti.state = "success"  # what "mark success" in the UI does before it notifies the listeners
        get_listener_manager().hook.on_task_instance_success(previous_state="failed", task_instance=ti)
        session.rollback()
    assert writeback.flush()
    _, tasks, _, _ = _rows(spec)
    assert tasks["extract orders"].status == "success"
