"""Housekeeping job DAGs: one task calling one Django function by dotted path, run for real with dag.test()."""

from __future__ import annotations

import os
import runpy
import textwrap
from pathlib import Path

import pytest

from airflow_plugin.maintenance.jobs import Job, build_job_dag, resolve

CALLS: list[dict] = []


def count_organizations(**kwargs) -> dict:
    """The job under test: reads Django (so it proves Django is set up in the task) and records its call."""
    from django_etl.core.models import Organization

    CALLS.append(kwargs)
    return {"organizations": Organization.objects.count(), **kwargs}


JOB = Job(
    dag_id="etl_test_job",
    display_name="ETL: test job",
    description="Counts organizations.",
    callable_path=f"{__name__}:count_organizations",
    schedule_setting="ETL_MAINTENANCE_SCHEDULE",
    kwargs={"label": "nightly"},
)


def test_build_job_dag_takes_its_schedule_from_the_setting(settings):
    settings.ETL_MAINTENANCE_SCHEDULE = "7 3 * * *"
    dag = build_job_dag(JOB)
    assert dag.schedule == "7 3 * * *"
    assert [t.task_id for t in dag.tasks] == ["test_job"]
    assert dag.max_active_runs == 1 and dag.catchup is False
    settings.ETL_MAINTENANCE_SCHEDULE = "off"
    assert type(build_job_dag(JOB).timetable).__name__ == "NullTimetable"
    assert type(build_job_dag(JOB, schedule="manual").timetable).__name__ == "NullTimetable"


def test_resolve_names_a_malformed_path():
    with pytest.raises(ValueError, match=r"package\.module:function"):
        resolve("django_etl.core.models.Organization")


@pytest.mark.integration
def test_job_dag_runs_the_function_with_django_set_up(airflow_db, transactional_db, organization):
    path = Path(os.environ["AIRFLOW__CORE__DAGS_FOLDER"]) / "etl_test_job_under_test.py"
    path.write_text(
        textwrap.dedent(
            f"""
            from airflow_plugin.maintenance.jobs import build_job_dag
            from {__name__} import JOB

            dag = build_job_dag(JOB, schedule="off")
            """
        )
    )
    try:
        CALLS.clear()
        run = runpy.run_path(str(path))["dag"].test()
    finally:
        path.unlink(missing_ok=True)
    assert run.state == "success"
    assert CALLS == [{"label": "nightly"}]


def test_every_hand_written_dag_file_imports_in_a_dagbag(tmp_path):
    """Each shipped housekeeping DAG file (dags/etl_*.py) parses without error and names the DAG it is named after."""
    import shutil

    from airflow.dag_processing.dagbag import DagBag

    files = sorted((Path(__file__).resolve().parents[2] / "dags").glob("etl_*.py"))
    assert files
    for path in files:
        shutil.copy(path, tmp_path)
    bag = DagBag(dag_folder=str(tmp_path))
    assert bag.import_errors == {}
    assert "etl_credential_expiry" in bag.dag_ids


@pytest.mark.integration
def test_credential_expiry_job_raises_each_warning_once(airflow_db, transactional_db, organization):
    import datetime as dt

    from django.utils import timezone

    from django_etl.connectors.models import Credential
    from django_etl.monitoring.models import Alert

    Credential.objects.create_encrypted(
        name="warehouse login",
        organization=organization,
        data={"password": "pw"},
        expires_at=timezone.now() + dt.timedelta(days=2),
    )
    import shutil

    path = Path(os.environ["AIRFLOW__CORE__DAGS_FOLDER"]) / "etl_credential_expiry.py"
    shutil.copy(Path(__file__).resolve().parents[2] / "dags" / "etl_credential_expiry.py", path)
    try:
        dag = runpy.run_path(str(path))["dag"]
        assert dag.test().state == "success"
        assert dag.test().state == "success"  # the next day's run: nothing new
    finally:
        path.unlink(missing_ok=True)
    alerts = Alert.objects.filter(alert_type="credential_expiring", organization=organization)
    assert alerts.count() == 1
    assert "warehouse login" in alerts.get().message


@pytest.mark.integration
def test_partitions_job_empties_the_default_partition(airflow_db, transactional_db, pipeline, make_step):
    import datetime as dt
    import shutil

    from django.db import connection

    from django_etl.runs import partitioning
    from django_etl.runs.models import PipelineRun, TaskRun

    started = dt.datetime(2018, 11, 5, tzinfo=dt.UTC)  # a month with no partition: the default one
    run = PipelineRun.objects.create(pipeline=pipeline, trigger_type="scheduled", started_at=started)
    TaskRun.objects.create(
        pipeline_run=run, pipeline_step=make_step("only", "notify", {"email": ["a@b.io"]}, 1)
    )
    path = Path(os.environ["AIRFLOW__CORE__DAGS_FOLDER"]) / "etl_partitions.py"
    shutil.copy(Path(__file__).resolve().parents[2] / "dags" / "etl_partitions.py", path)
    try:
        assert runpy.run_path(str(path))["dag"].test().state == "success"
        assert partitioning.default_partition_rows() == 0
        assert "task_runs_y2018m11" in partitioning.existing_partitions(connection)
    finally:
        path.unlink(missing_ok=True)
        with connection.cursor() as cursor:
            cursor.execute('DROP TABLE IF EXISTS "task_runs_y2018m11"')  # DDL outlives the test's flush


@pytest.mark.integration
def test_alert_delivery_job_sends_the_outbox(airflow_db, transactional_db, organization, settings):
    """The shipped etl_alert_delivery DAG, run by Airflow: a queued delivery reaches the SMTP sink once."""
    import shutil

    from django_etl.monitoring.lifecycle import raise_alert
    from django_etl.monitoring.models import AlertDelivery, AlertRule
    from tests.support.receivers import SmtpSink
    from tests.support.servers import free_port

    sink = SmtpSink(port=free_port()).start()
    settings.MAILERS = sink.mailers()
    AlertRule.objects.create(organization=organization, name="ops", email_recipients="ops@example.com")
    raise_alert(
        alert_type="pipeline_failed",
        level="critical",
        condition_key="pipeline_failed:job-test",
        message="Pipeline 'Orders' failed",
        organization_id=organization.pk,
    )
    path = Path(os.environ["AIRFLOW__CORE__DAGS_FOLDER"]) / "etl_alert_delivery.py"
    shutil.copy(Path(__file__).resolve().parents[2] / "dags" / "etl_alert_delivery.py", path)
    try:
        dag = runpy.run_path(str(path))["dag"]
        assert dag.schedule == "*/2 * * * *" or str(dag.timetable.summary) == "*/2 * * * *"
        assert dag.test().state == "success"
        assert dag.test().state == "success"  # the next drain: nothing more to send
    finally:
        path.unlink(missing_ok=True)
        sink.stop()
    assert [m.recipients for m in sink.messages] == [["ops@example.com"]]
    assert AlertDelivery.objects.get().status == "sent"
