"""Under real Airflow processes: a run still running far past its baseline is flagged while it runs, and a task
killed with SIGKILL (from outside, as the OOM killer would) is recorded as killed, not as out of memory."""

from __future__ import annotations

import os
import signal
import time

import pytest
from django.utils import timezone

from tests.airflow_plugin.conftest import RECORDER_DATABASES
from tests.support.airflow_processes import AirflowCluster
from tests.support.run_history import seed_history

pytestmark = [
    pytest.mark.slow,
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True, databases=RECORDER_DATABASES),
]

# Minutes of DuckDB work: the task is still busy when the test kills it.
ENDLESS_SQL = (
    "SELECT o.* FROM orders o CROSS JOIN "
    "(SELECT count(*) AS n FROM range(1000000000000) t(i) WHERE (i * 7919) % 13 = 0) AS x"
)


def _wait(what: str, probe, cluster: AirflowCluster, timeout: float = 240):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        cluster.check_alive()
        found = probe()
        if found:
            return found
        time.sleep(0.5)
    raise TimeoutError(f"{what} not seen within {timeout} s; see {cluster.home}/*.log")


def test_health_overdue_run_flagged_while_running_and_killed_task_recorded_killed(
    organization, user, settings, tmp_path
):
    from django.db import connection

    from airflow_plugin import writeback
    from django_etl.connectors.models import Connector
    from django_etl.dataplane.staging import read_attempt
    from django_etl.monitoring.models import Alert
    from django_etl.monitoring.running import check_running_runs
    from django_etl.pipelines.generator import generate
    from django_etl.pipelines.models import Pipeline, PipelineStep
    from django_etl.runs.models import PipelineRun, TaskRun

    landing = tmp_path / "landing"
    landing.mkdir()
    (landing / "orders.csv").write_text("order_id,amount\n1,2.5\n2,3.0\n")
    staging = tmp_path / "staging"
    settings.ETL_FILE_ROOTS = [str(tmp_path)]
    settings.ETL_STAGING_URL = str(staging)
    Connector.objects.create(
        name="landing",
        connector_type="file",
        organization=organization,
        created_by=user,
        config={"root": str(landing), "format": "csv"},
    )
    pipeline = Pipeline.objects.create(
        name="Endless", organization=organization, created_by=user, status="active", config={"retries": 0}
    )
    extract = PipelineStep.objects.create(
        pipeline=pipeline,
        name="Extract orders",
        step_type="extract",
        config={"connector": "landing", "path": "orders.csv", "output": "orders"},
        order_index=10,
    )
    PipelineStep.objects.create(
        pipeline=pipeline,
        name="Crunch",
        step_type="transform",
        config={"inputs": ["orders"], "output": "crunched", "sql": ENDLESS_SQL},
        order_index=20,
        dependencies=[str(extract.pk)],
    )
    seed_history(pipeline, {}, runs=12, run_seconds=2.0, rows=2)

    db = connection.settings_dict
    server = f"postgresql://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}"
    cluster = AirflowCluster(
        tmp_path / "airflow",
        f"{server}/postgres",
        "airflow_health_test",
        {
            "DATABASE_URL": f"{server}/{db['NAME']}",
            "ETL_STAGING_URL": str(staging),
            "ETL_VAR_DIR": str(tmp_path / "var"),
            "ETL_FILE_ROOTS": str(tmp_path),
            "ETL_DAGS_FOLDER": str(tmp_path / "airflow" / "dags"),
        },
    )
    settings.ETL_DAGS_FOLDER = str(cluster.dags)
    assert generate(pipeline_ids=[pipeline.pk], log=lambda line: None).ok
    try:
        cluster.start()
        cluster.wait_for_dag(pipeline.dag_id)
        cluster.trigger(pipeline.dag_id)

        def crunching():
            run = PipelineRun.objects.filter(pipeline=pipeline, status="running").exclude(
                airflow_run_id__startswith="scheduled__seeded"
            )
            run = run.first()
            attempt = run and read_attempt(run.airflow_dag_id, run.airflow_run_id, "crunch")
            return (run, attempt) if attempt else None

        run, attempt = _wait("the transform running", crunching, cluster)
        # The seeded runs took about 2 s: well past twice that, the run is overdue while it still runs.
        _wait("4 s of run time", lambda: (timezone.now() - run.started_at).total_seconds() > 5, cluster)
        report = check_running_runs()
        assert str(run.pk) in report.flagged_runs
        overdue = Alert.objects.get(alert_type="performance_degradation", pipeline_run=run)
        assert overdue.metadata["phase"] == "running" and overdue.metadata["ratio"] > 2
        assert PipelineRun.objects.get(pk=run.pk).status == "running"  # flagged before its end

        os.kill(attempt["pid"], signal.SIGKILL)  # what the OOM killer does, without the out-of-memory part
        _wait(
            "the run's end",
            lambda: PipelineRun.objects.filter(pk=run.pk, completed_at__isnull=False).first(),
            cluster,
        )
    finally:
        cluster.stop()
    writeback.flush()
    run.refresh_from_db()
    assert run.status == "failed"
    crunch = TaskRun.objects.get(pipeline_run=run, pipeline_step__name="Crunch")
    assert crunch.status == "failed"
    assert crunch.metrics["ended"] == "killed"
    assert crunch.metrics["out_of_memory"] is False
    assert crunch.metrics["kill_evidence"]
    failed = Alert.objects.get(alert_type="task_failed", task_run=crunch)
    assert "killed (SIGKILL or a lost worker)" in failed.message
    assert not Alert.objects.filter(alert_type="resource_exhaustion").exists()
