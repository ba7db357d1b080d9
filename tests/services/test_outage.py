"""Nothing lost while Django's database is away: a whole pipeline run with write-back's own database connection cut
(the session's recorder proxy stopped), then the etl_catchup DAG records it as if the outage never happened."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from tests.services.conftest import wait_for
from tests.support.run_records import user_view

pytestmark = [
    pytest.mark.slow,
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True, databases=["default", "etl_recorder"]),
]

REPO = Path(__file__).resolve().parents[2]
FINISHED = {"success", "failed"}


@pytest.fixture(scope="module", autouse=True)
def recorder_alias(django_db_setup, django_db_blocker):
    """The recorder's alias in this process too: the second catch-up runs here, as a command."""
    from airflow_plugin.writeback import close_connection, setup

    setup()
    yield
    close_connection()


@pytest.fixture
def demo(controlled):
    from django.core.management import call_command

    from django_etl.pipelines.models import Pipeline

    call_command("load_demo", verbosity=0)
    return Pipeline.objects.get(name="Daily orders")


def client():
    from django_etl.control.airflow_api import AirflowClient

    return AirflowClient.from_settings()


def trigger(dag_id: str, kind: str = "api") -> str:
    """Trigger a run through Airflow's API only: Django creates no row of its own for it."""
    from django_etl.control.runs import new_run_id

    run_id = new_run_id(kind)
    client().trigger(dag_id, run_id=run_id, conf={}, interval=None)
    return run_id


def airflow_finished(dag_id: str, run_id: str, services) -> dict:
    return wait_for(
        f"{dag_id}/{run_id} finished in Airflow",
        lambda: (run := client().dag_run(dag_id, run_id))["state"] in FINISHED and run,
        services,
    )


def recorded(pipeline, run_id: str):
    from django_etl.runs.models import PipelineRun

    return PipelineRun.objects.filter(airflow_dag_id=pipeline.dag_id, airflow_run_id=run_id).first()


def view(pipeline, run_id: str) -> dict:
    api = client()
    return user_view(
        recorded(pipeline, run_id),
        api.dag_run(pipeline.dag_id, run_id),
        api.task_instances(pipeline.dag_id, run_id),
    )


def task_seconds(dag_id: str, run_id: str) -> str:
    """Each task's duration and the run's, as Airflow measured them (the figure docs/write-back.md quotes)."""
    tis = sorted(client().task_instances(dag_id, run_id), key=lambda ti: ti.get("start_date") or "")
    run = client().dag_run(dag_id, run_id)
    each = " ".join(f"{float(ti.get('duration') or 0):.1f}" for ti in tis)
    return f"tasks {each}; run {float(run.get('duration') or 0):.1f} s"


def counts() -> dict[str, int]:
    from django_etl.lineage.models import DataLineage
    from django_etl.monitoring.models import Alert
    from django_etl.runs.models import PipelineRun, TaskRun

    return {model.__name__: model.objects.count() for model in (PipelineRun, TaskRun, Alert, DataLineage)}


def test_outage_run_is_caught_up_as_if_write_back_never_failed(
    demo, controlled, services_recorder_proxy, capsys
):
    from django.core.management import call_command

    wait_for(f"Airflow parsed {demo.dag_id}", lambda: _known(demo.dag_id), controlled)
    # The housekeeping DAG as shipped, in this deployment's dags folder (its schedule is off here).
    shutil.copy(REPO / "dags" / "etl_catchup.py", Path(controlled.env["AIRFLOW__CORE__DAGS_FOLDER"]))

    baseline = trigger(demo.dag_id)
    airflow_finished(demo.dag_id, baseline, controlled)
    wait_for(
        "the baseline run recorded", lambda: (r := recorded(demo, baseline)) and r.completed_at, controlled
    )

    services_recorder_proxy.stop()
    try:
        missed = trigger(demo.dag_id)
        outage_run = airflow_finished(demo.dag_id, missed, controlled)
        time.sleep(6)  # every write-back of the run has failed or given up (ETL_RECORDER_TIMEOUT is 5 s)
    finally:
        services_recorder_proxy.start()
    assert outage_run["state"] == "success"  # the tasks did not notice
    assert recorded(demo, missed) is None  # Django has nothing of it
    with capsys.disabled():  # a figure for docs/write-back.md: task time with write-back failing, and without
        print(
            f"\nbaseline: {task_seconds(demo.dag_id, baseline)}\noutage:   {task_seconds(demo.dag_id, missed)}"
        )

    wait_for("Airflow parsed etl_catchup", lambda: _known("etl_catchup"), controlled)
    catchup_run = trigger("etl_catchup", "catchup")
    assert airflow_finished("etl_catchup", catchup_run, controlled)["state"] == "success"

    caught, live = view(demo, missed), view(demo, baseline)
    assert caught == live
    assert caught["status"] == "success" and len(caught["tasks"]) == 6
    assert all(task["has logs"] for task in caught["tasks"].values())
    assert caught["lineage"] and caught["metrics"]["rows_loaded"]

    before = counts()
    capsys.readouterr()
    call_command("catch_up_runs", "--dag-id", demo.dag_id)
    output = capsys.readouterr().out
    # The baseline, the caught-up run, and any run the schedule started meanwhile: all complete.
    assert "complete in Django, 0 caught up, 0 failed" in output, output
    assert counts() == before


def _known(dag_id: str):
    from django_etl.control.airflow_api import AirflowRefused

    try:
        return client().dag(dag_id)
    except AirflowRefused:
        return None
