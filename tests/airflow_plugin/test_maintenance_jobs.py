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
