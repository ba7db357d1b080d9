"""The demo run: the demo organization's pipeline through Airflow's dag.test(), recorded into Django."""

from __future__ import annotations

import pytest

RECORDER_DATABASES = ["default", "etl_recorder"]
pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True, databases=RECORDER_DATABASES)]


@pytest.fixture(scope="module", autouse=True)
def recorder_alias(django_db_setup, django_db_blocker):
    from airflow_plugin.writeback import close_connection, setup

    setup()  # the recorder's alias, registered once the default alias points at the test database
    yield
    close_connection()


def test_run_pipeline_demo_records_successful_run_with_lineage():
    from django_etl.core.demo import load_demo
    from django_etl.lineage.models import DataLineage
    from django_etl.runs.demo_run import run_pipeline
    from django_etl.runs.run_report import report_lines

    load_demo()
    lines = []
    run = run_pipeline("Daily orders", out=lines.append)
    assert run is not None, lines
    assert run.status == "success"
    assert run.completed_at is not None
    tasks = list(run.task_runs.all())
    assert len(tasks) == 6
    assert {t.status for t in tasks} == {"success"}
    assert run.metrics["rows_loaded"] > 0
    edges = DataLineage.objects.filter(target_task__pipeline_run=run)
    assert edges.count() >= 3
    report = "\n".join(report_lines(run))
    assert "Extract orders" in report and "lineage" in report
