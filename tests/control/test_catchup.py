"""The catch-up reconciler against real Airflow: runs dag.test() executed while the recorder's own database
connection was cut (a TCP proxy, stopped) are read back through Airflow's REST API and recorded as live
write-back records them."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from django_etl.control.airflow_api import AirflowClient
from django_etl.control.catchup import catch_up_runs, doc_facts, parse_since
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
def test_catch_up_runs_records_a_missed_run_as_live_write_back_did(demo, recorder_proxy, monkeypatch):
    from django_etl.runs.models import PipelineRun

    # Pages of one run: Airflow's offset paging and the batches are walked for real.
    monkeypatch.setattr("django_etl.control.airflow_api.PAGE_SIZE", 1)
    monkeypatch.setattr("django_etl.control.catchup.PAGE_SIZE", 1)

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
    assert "… 2 runs read" in lines
    caught, recorded_live = view(demo, missed), view(demo, live)
    assert caught == recorded_live
    assert caught["status"] == "success" and len(caught["tasks"]) == 6
    assert caught["context"]["spec_source"] == "dag" and caught["metrics"]["rows_loaded"]

    before = counts()
    again = catch_up_runs(dag_id=demo.dag_id)
    assert (again.caught_up, again.complete, counts()) == ([], 2, before)


def forget(pipeline, run_id, keep_tasks: int, status: str):
    """As if the run's end-of-run reconciliation (and most task events) had been lost: Django has only
    ``keep_tasks`` of its task runs, and the run still running, or settled by the DAG callbacks' safety net
    from those rows (``status``)."""
    from django_etl.runs.models import PipelineRun

    row = PipelineRun.objects.get(airflow_dag_id=pipeline.dag_id, airflow_run_id=run_id)
    for task_run in list(row.task_runs.order_by("started_at"))[keep_tasks:]:
        task_run.delete()
    PipelineRun.objects.filter(pk=row.pk).update(
        status=status,
        completed_at=None if status == "running" else row.completed_at,
        metrics={**row.metrics, "reconciled": False, "task_count": keep_tasks},
    )


def break_enrich(pipeline) -> None:
    """A step that fails for good (SQL naming a column that does not exist): a failed run keeps its staged data."""
    from django.db import transaction

    from django_etl.pipelines import versioning

    enrich = pipeline.steps.get(name="Enrich orders")
    enrich.config = {**enrich.config, "sql": "SELECT no_such_column FROM orders_raw"}
    with transaction.atomic(), versioning.batch():  # as the admin saves: one version
        enrich.save()


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        ("running", "running in Django, failed in Airflow"),
        ("failed", "settled without all its task instances"),
    ],
)
@recorder_db
def test_catch_up_runs_refills_a_run_whose_end_was_lost(demo, status, reason):
    break_enrich(demo)
    run_id = run_once(demo)
    recorded = view(demo, run_id)
    forget(demo, run_id, keep_tasks=2, status=status)

    report = catch_up_runs(dag_id=demo.dag_id)
    assert report.caught_up == [f"{demo.dag_id}/{run_id}: {reason}"]
    assert view(demo, run_id) == recorded
    assert recorded["status"] == "failed" and len(recorded["tasks"]) == 6


@recorder_db
def test_catch_up_runs_dry_run_names_the_run_and_writes_nothing(demo, recorder_proxy):
    recorder_proxy.stop()
    try:
        missed = run_once(demo)
    finally:
        recorder_proxy.start()
    before = counts()
    lines: list[str] = []
    report = catch_up_runs(dag_id=demo.dag_id, dry_run=True, out=lines.append)
    assert report.caught_up == [f"{demo.dag_id}/{missed}: not recorded"]
    assert f"{demo.dag_id}/{missed}: would catch up (not recorded)" in lines
    assert counts() == before


@recorder_db
def test_catch_up_runs_failed_run_gets_the_alerts_write_back_raises(demo, recorder_proxy):
    break_enrich(demo)
    live = run_once(demo)
    recorder_proxy.stop()
    try:
        missed = run_once(demo)
    finally:
        recorder_proxy.start()

    catch_up_runs(dag_id=demo.dag_id)
    caught, recorded_live = view(demo, missed), view(demo, live)
    assert caught == recorded_live
    assert caught["status"] == "failed"
    assert {task: row["status"] for task, row in caught["tasks"].items()} == {
        "Extract orders": "success",
        "Extract customers": "success",
        "Enrich orders": "failed",
        "Check orders": "upstream_failed",
        "Load warehouse": "upstream_failed",
        "Notify team": "success",
    }
    assert {kind for kind, _ in caught["alerts"]} == {"task_failed", "pipeline_failed"}


@recorder_db
def test_catch_up_runs_database_away_says_so_and_writes_nothing(demo, recorder_proxy):
    from django_etl.control.catchup import CatchUpFailed

    recorder_proxy.stop()
    try:
        run_once(demo)
        before = counts()
        with pytest.raises(
            CatchUpFailed, match=r"Django's database refused write-back's connection.*DATABASE_URL"
        ):
            catch_up_runs(dag_id=demo.dag_id)
    finally:
        recorder_proxy.start()
    assert counts() == before


@pytest.mark.django_db
def test_catch_up_runs_command_airflow_unreachable_names_the_address(settings):
    settings.ETL_AIRFLOW_API_URL = "http://127.0.0.1:9"
    with pytest.raises(CommandError, match=r"Airflow is unreachable at http://127\.0\.0\.1:9"):
        call_command("catch_up_runs")


@pytest.mark.django_db
def test_catch_up_runs_command_wrong_password_names_the_settings(api_settings):
    api_settings.ETL_AIRFLOW_PASSWORD = "not-the-password"
    with pytest.raises(CommandError, match=r"refused the service account .*ETL_AIRFLOW_PASSWORD"):
        call_command("catch_up_runs")


@pytest.mark.django_db
def test_catch_up_runs_command_refuses_a_dag_that_is_no_pipeline(api_settings):
    with pytest.raises(CommandError, match=r"'etl_catchup' is not a pipeline's DAG"):
        call_command("catch_up_runs", "--dag-id", "etl_catchup")


def test_parse_since_reads_durations_and_times():
    from datetime import UTC, datetime

    now = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
    assert parse_since("90m", now) == datetime(2026, 12, 2, 10, 30, tzinfo=UTC)
    assert parse_since("2d", now) == datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    assert parse_since("2026-12-01T08:00", now) == datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    with pytest.raises(Exception, match=r"--since 'yesterday': give a duration"):
        parse_since("yesterday", now)


def test_doc_facts_reads_what_the_builder_writes():
    from airflow_plugin.builder import doc_md

    spec = {
        "pipeline": {
            "id": "7",
            "name": "P",
            "organization": "acme",
            "organization_name": "Acme",
            "version": "1.2.0",
            "spec_hash": "sha256:abc",
            "status": "active",
        },
        "dag": {"description": ""},
        "steps": [],
    }
    assert doc_facts(doc_md(spec)) == {"version": "1.2.0", "spec_hash": "sha256:abc"}
    assert doc_facts("### a DAG someone wrote by hand") == {}


@recorder_db
def test_catch_up_runs_leaves_runs_of_a_deleted_pipeline_alone(demo, recorder_proxy):
    recorder_proxy.stop()
    try:
        run_once(demo)
    finally:
        recorder_proxy.start()
    dag_id = demo.dag_id
    demo.delete()
    report = catch_up_runs(dag_id=dag_id)
    assert (report.runs_seen, report.complete, report.caught_up, report.failed) == (1, 1, [], [])


def set_airflow_state(dag_id: str, run_id: str, *, running_task: str | None):
    """Turn a finished run back into one still running at ``running_task`` in Airflow's own metadata DB (what
    a scheduler's view mid-run is), or finish it again (``None``)."""
    from airflow.models import DagRun, TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        dag_run = session.query(DagRun).filter_by(dag_id=dag_id, run_id=run_id).one()
        ti = session.query(TaskInstance).filter_by(dag_id=dag_id, run_id=run_id, task_id=running_task or "")
        if running_task:
            set_airflow_state.saved = (dag_run.end_date, ti.one().end_date)
            dag_run.state, dag_run.end_date = "running", None
            ti.update({"state": "running", "end_date": None})
        else:
            dag_run.state, dag_run.end_date = "success", set_airflow_state.saved[0]
            session.query(TaskInstance).filter_by(dag_id=dag_id, run_id=run_id, state="running").update(
                {"state": "success", "end_date": set_airflow_state.saved[1]}
            )


@recorder_db
def test_catch_up_runs_records_an_open_run_without_settling_it(demo, recorder_proxy):
    from django_etl.runs.models import PipelineRun

    recorder_proxy.stop()
    try:
        missed = run_once(demo)
    finally:
        recorder_proxy.start()
    set_airflow_state(demo.dag_id, missed, running_task="load_warehouse")
    report = catch_up_runs(dag_id=demo.dag_id)
    assert report.caught_up == [f"{demo.dag_id}/{missed}: not recorded"]
    row = PipelineRun.objects.get(airflow_run_id=missed)
    assert (row.status, row.completed_at) == ("running", None)
    tasks = {t.pipeline_step.name: t.status for t in row.task_runs.all()}
    assert tasks["Load warehouse"] == "running" and tasks["Extract orders"] == "success"

    assert catch_up_runs(dag_id=demo.dag_id).caught_up == []  # nothing differs while it runs
    set_airflow_state(demo.dag_id, missed, running_task=None)
    report = catch_up_runs(dag_id=demo.dag_id)
    assert report.caught_up == [f"{demo.dag_id}/{missed}: running in Django, success in Airflow"]
    row.refresh_from_db()
    assert row.status == "success" and row.completed_at is not None
    assert {t.status for t in row.task_runs.all()} == {"success"}
