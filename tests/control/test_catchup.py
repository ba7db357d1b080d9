"""The catch-up reconciler against real Airflow: runs dag.test() executed while the recorder's own database
connection was cut (a TCP proxy, stopped) are read back through Airflow's REST API and recorded as live
write-back records them."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest
from django.core.management import call_command

from django_etl.control.airflow_api import AirflowClient
from django_etl.control.catchup import catch_up_runs
from tests.control.conftest import RECORDER_DATABASES
from tests.support.run_records import user_view

pytestmark = [pytest.mark.integration]
recorder_db = pytest.mark.django_db(transaction=True, databases=RECORDER_DATABASES)


@pytest.fixture
def demo(api_settings, recorder_proxy, transactional_db):
    from django_etl.pipelines.models import Pipeline

    call_command("load_demo", verbosity=0)
    return Pipeline.objects.get(name="Daily orders")


def run_once(pipeline) -> str:
    """Compile the pipeline into the session's dags folder, run it with dag.test(), wait for write-back."""
    from django.conf import settings

    from airflow_plugin import writeback
    from django_etl.pipelines.generator import generate

    assert generate(pipeline_ids=[pipeline.pk], log=lambda line: None).ok
    namespace = runpy.run_path(str(Path(settings.ETL_DAGS_FOLDER) / f"{pipeline.dag_id}.py"))
    dag = next(value for value in namespace.values() if type(value).__name__ == "DAG")
    dag_run = dag.test()
    assert writeback.flush(timeout=60)
    return dag_run.run_id


def view(pipeline, run_id):
    from django_etl.runs.models import PipelineRun

    client = AirflowClient.from_settings()
    row = PipelineRun.objects.get(airflow_dag_id=pipeline.dag_id, airflow_run_id=run_id)
    return user_view(
        row, client.dag_run(pipeline.dag_id, run_id), client.task_instances(pipeline.dag_id, run_id)
    )


def counts() -> dict[str, int]:
    from django_etl.lineage.models import DataLineage
    from django_etl.monitoring.models import Alert
    from django_etl.runs.models import PipelineRun, TaskRun

    return {model.__name__: model.objects.count() for model in (PipelineRun, TaskRun, Alert, DataLineage)}


@recorder_db
def test_catch_up_runs_records_a_missed_run_as_live_write_back_did(demo, recorder_proxy):
    from django_etl.runs.models import PipelineRun

    live = run_once(demo)
    recorder_proxy.stop()
    try:
        missed = run_once(demo)
    finally:
        recorder_proxy.start()
    assert not PipelineRun.objects.filter(airflow_run_id=missed).exists()

    lines: list[str] = []
    report = catch_up_runs(dag_id=demo.dag_id, out=lines.append)
    assert report.caught_up == [f"{demo.dag_id}/{missed}: not recorded"]
    assert report.complete == 1 and not report.failed
    assert any("caught up (not recorded)" in line for line in lines)
    caught, recorded_live = view(demo, missed), view(demo, live)
    assert caught == recorded_live
    assert caught["status"] == "success" and len(caught["tasks"]) == 6
    assert caught["context"]["spec_source"] == "dag" and caught["metrics"]["rows_loaded"]

    before = counts()
    again = catch_up_runs(dag_id=demo.dag_id)
    assert (again.caught_up, again.complete, counts()) == ([], 2, before)
