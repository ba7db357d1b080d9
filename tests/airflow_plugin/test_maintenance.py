"""The maintenance DAG that runs generate_dags on a schedule, run for real with dag.test()."""

from __future__ import annotations

import os
import runpy
import shutil
import textwrap
from pathlib import Path

import pytest

from airflow_plugin.maintenance import MAINTENANCE_DAG_ID, GenerateDagsOperator, build_maintenance_dag
from django_etl.conf import SETTINGS
from tests.support.compiler_helpers import SHAPES, make_pipeline

REPO_DAGS = Path(__file__).resolve().parents[2] / "dags"


def test_build_maintenance_dag_runs_every_15_minutes_by_default(settings):
    settings.ETL_MAINTENANCE_SCHEDULE = SETTINGS["ETL_MAINTENANCE_SCHEDULE"].default()
    dag = build_maintenance_dag()
    assert dag.dag_id == MAINTENANCE_DAG_ID
    assert dag.schedule == "*/15 * * * *"
    assert dag.max_active_runs == 1 and dag.catchup is False
    assert dag.is_paused_upon_creation is False
    assert [t.task_id for t in dag.tasks] == ["generate_dags"]


@pytest.mark.parametrize(("value", "summary"), [("*/5 * * * *", "*/5 * * * *"), ("off", None)])
def test_build_maintenance_dag_schedule_from_the_setting(settings, value, summary):
    settings.ETL_MAINTENANCE_SCHEDULE = value
    dag = build_maintenance_dag()
    if summary is None:
        assert type(dag.timetable).__name__ == "NullTimetable"
    else:
        assert dag.schedule == summary


def test_repository_maintenance_dag_file_imports_in_a_dagbag(tmp_path):
    from airflow.dag_processing.dagbag import DagBag

    shutil.copy(REPO_DAGS / "etl_maintenance.py", tmp_path)
    bag = DagBag(dag_folder=str(tmp_path))
    assert bag.import_errors == {}
    assert bag.dag_ids == [MAINTENANCE_DAG_ID]


@pytest.fixture
def maintenance_run(airflow_db, tmp_path):
    """Run the maintenance DAG (from a file in the session's dags folder) writing into ``tmp_path/out``."""
    output = tmp_path / "out"
    path = Path(os.environ["AIRFLOW__CORE__DAGS_FOLDER"]) / "etl_maintenance_under_test.py"
    path.write_text(
        textwrap.dedent(
            f"""
            from airflow_plugin.maintenance import build_maintenance_dag

            dag = build_maintenance_dag(schedule="off", output={str(output)!r})
            """
        )
    )

    def run():
        dag = runpy.run_path(str(path))["dag"]
        return dag.test()

    yield run, output
    path.unlink(missing_ok=True)


@pytest.mark.integration
@pytest.mark.slow
def test_maintenance_run_writes_files_then_fails_visibly_and_keeps_good_files(
    transactional_db, organization, user, file_connector, maintenance_run
):
    run, output = maintenance_run
    pipeline = make_pipeline(organization, user, SHAPES["linear"][0])
    first = run()
    assert first.state == "success"
    path = output / f"{pipeline.dag_id}.py"
    good = path.read_bytes()

    pipeline.steps.filter(name="clean").update(config={"sql": "select 1", "colour": "red"})
    second = run()
    assert second.state == "failed"
    task = second.get_task_instance("generate_dags")
    assert task.state == "failed"
    assert path.read_bytes() == good


@pytest.mark.django_db
def test_generate_dags_operator_does_nothing_when_nothing_changed(
    organization, user, file_connector, tmp_path
):
    operator = GenerateDagsOperator(task_id="generate_dags", dags_folder=str(tmp_path))
    pipeline = make_pipeline(organization, user, SHAPES["linear"][0])
    assert operator.execute({})["created"] == 1
    assert operator.execute({}) == {"skipped": 1}
    pipeline.steps.filter(name="clean").update(config={"sql": "select 2"})  # no save(): still seen
    assert operator.execute({})["updated"] == 1
    (tmp_path / f"{pipeline.dag_id}.py").unlink()  # the folder counts too
    assert operator.execute({})["created"] == 1


@pytest.mark.django_db
def test_generate_dags_operator_failure_raises_one_alert_per_pipeline(
    organization, user, file_connector, tmp_path
):
    from airflow.sdk.exceptions import AirflowFailException

    from django_etl.monitoring.models import Alert

    operator = GenerateDagsOperator(task_id="generate_dags", dags_folder=str(tmp_path))
    pipeline = make_pipeline(organization, user, SHAPES["linear"][0])
    pipeline.steps.filter(name="clean").update(config={"sql": "select 1", "colour": "red"})
    for _ in range(2):  # the same report twice: one alert
        with pytest.raises(AirflowFailException, match="do not compile"):
            operator.execute({})
    (alert,) = Alert.objects.all()
    assert (alert.alert_type, alert.level, alert.organization_id) == (
        "pipeline_failed",
        "error",
        organization.pk,
    )
    assert "colour" in alert.message and alert.metadata["pipeline_id"] == str(pipeline.pk)


@pytest.mark.django_db
def test_generate_dags_operator_new_report_updates_the_alert_and_a_fix_resolves_it(
    organization, user, file_connector, tmp_path
):
    from airflow.sdk.exceptions import AirflowFailException

    from django_etl.monitoring.models import Alert

    operator = GenerateDagsOperator(task_id="generate_dags", dags_folder=str(tmp_path))
    pipeline = make_pipeline(organization, user, SHAPES["linear"][0])
    clean = pipeline.steps.filter(name="clean")
    for bad_key in ("colour", "flavour"):  # two different reports: one alert, two occurrences
        clean.update(config={"sql": "select 1", bad_key: "red"})
        with pytest.raises(AirflowFailException):
            operator.execute({})
    (alert,) = Alert.objects.all()
    assert alert.occurrences == 2 and "flavour" in alert.message and not alert.is_resolved
    clean.update(config={"sql": "select 1"})
    assert operator.execute({})["created"] == 1
    alert.refresh_from_db()
    assert alert.is_resolved and alert.metadata["resolution"]["how"] == "condition_cleared"
