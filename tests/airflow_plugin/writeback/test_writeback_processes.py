"""A task killed with SIGKILL under real Airflow processes: only the scheduler's reconciliation can record it."""

from __future__ import annotations

import time

import pytest

from tests.airflow_plugin.conftest import RECORDER_DATABASES
from tests.support.airflow_processes import AirflowCluster
from tests.support.writeback_dags import write_dag_file

pytestmark = [
    pytest.mark.slow,
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True, databases=RECORDER_DATABASES),
]


def _wait_for_finished_run(dag_id: str, cluster: AirflowCluster, timeout: float = 300):
    from django_etl.runs.models import PipelineRun

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        cluster.check_alive()
        run = PipelineRun.objects.filter(airflow_dag_id=dag_id, completed_at__isnull=False).first()
        if run is not None:
            return run
        time.sleep(1)
    raise TimeoutError(f"no finished PipelineRun for {dag_id} within {timeout} s; see {cluster.home}/*.log")


def test_writeback_sigkilled_task_recorded_failed_by_reconciliation(scripted_pipeline, tmp_path):
    from django.db import connection

    from django_etl.monitoring.models import Alert
    from django_etl.runs.models import TaskRun

    spec = scripted_pipeline(
        [
            ("extract orders", "extract", [], "ok", 0),
            ("crunch", "transform", ["extract orders"], "sigkill", 0),
            ("load", "load", ["crunch"], "ok", 0),
        ]
    )
    db = connection.settings_dict
    server = f"postgresql://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}"
    cluster = AirflowCluster(
        tmp_path / "airflow",
        f"{server}/postgres",
        "airflow_writeback_test",
        {
            "DATABASE_URL": f"{server}/{db['NAME']}",
            "ETL_STAGING_URL": str(tmp_path / "staging"),
            "ETL_VAR_DIR": str(tmp_path / "var"),
        },
    )
    write_dag_file(cluster.dags, spec)
    try:
        cluster.start()
        cluster.wait_for_dag(spec["dag_id"])
        cluster.trigger(spec["dag_id"])
        run = _wait_for_finished_run(spec["dag_id"], cluster)
    finally:
        cluster.stop()
    from airflow_plugin import writeback

    writeback.flush()
    assert run.status == "failed"
    assert run.trigger_type == "manual"
    tasks = {t.pipeline_step.name: t for t in TaskRun.objects.filter(pipeline_run=run)}
    assert {n: t.status for n, t in tasks.items()} == {
        "extract orders": "success",
        "crunch": "failed",
        "load": "upstream_failed",
    }
    # Real processes write task log files: the TaskRun keeps their tail, not the structured stand-in.
    assert tasks["extract orders"].logs and "structured summary" not in tasks["extract orders"].logs
    alerts = {(a.alert_type, a.level): a for a in Alert.objects.filter(pipeline_run=run)}
    assert set(alerts) == {("task_failed", "error"), ("pipeline_failed", "critical")}
    assert alerts[("task_failed", "error")].task_run_id == tasks["crunch"].id
    assert "without reporting an error" in alerts[("task_failed", "error")].message
    # It killed itself: recorded killed, and not out of memory (the kernel log and its cgroup say no OOM kill).
    assert tasks["crunch"].metrics["ended"] == "killed"
    assert tasks["crunch"].metrics["out_of_memory"] is False, tasks["crunch"].metrics["kill_evidence"]
    assert "killed (SIGKILL or a lost worker)" in alerts[("task_failed", "error")].message
