"""Catch-up's write-back side on scripted DAGs run by dag.test(): retried tries, and DAGs the generator did not
write (no compiled spec to read back), recorded from Airflow's REST API as live write-back records them."""

from __future__ import annotations

import pytest

from tests.airflow_plugin.conftest import RECORDER_DATABASES
from tests.support.run_records import user_view

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True, databases=RECORDER_DATABASES)]

STEPS = [
    ("extract orders", "extract", [], "ok", 0),
    ("crunch", "transform", ["extract orders"], "fail_once", 1),
    ("load", "load", ["crunch"], "ok", 0),
]


def view(dag_id: str, run_id: str) -> dict:
    from django_etl.control.airflow_api import AirflowClient
    from django_etl.runs.models import PipelineRun

    client = AirflowClient.from_settings()
    row = PipelineRun.objects.get(airflow_dag_id=dag_id, airflow_run_id=run_id)
    return user_view(row, client.dag_run(dag_id, run_id), client.task_instances(dag_id, run_id))


def test_catch_up_retried_task_gets_its_earlier_try_and_first_start(
    scripted_pipeline, run_dag, recorder_proxy, api_settings
):
    from django_etl.control.catchup import catch_up_runs

    spec = scripted_pipeline(STEPS)
    live = run_dag(spec).run_id
    recorder_proxy.stop()
    try:
        missed = run_dag(spec).run_id
    finally:
        recorder_proxy.start()

    report = catch_up_runs(dag_id=spec["dag_id"])
    assert report.caught_up == [f"{spec['dag_id']}/{missed}: not recorded"]
    caught, recorded_live = view(spec["dag_id"], missed), view(spec["dag_id"], live)
    crunch = caught["tasks"]["crunch"]
    assert (crunch["status"], crunch["try_number"], crunch["retry_count"]) == ("success", 2, 1)
    assert ("task_failed", "task_retry:crunch:1") in caught["alerts"]
    # A hand-written DAG has no compiled spec to read back: live write-back took the step map from the
    # operators, catch-up resolves steps by name. Everything a user sees of the run is the same.
    assert caught["context"].pop("steps") == [] and recorded_live["context"].pop("steps")
    assert caught["context"].pop("spec_source") == "django"
    recorded_live["context"].pop("spec_source")
    caught["context"].pop("spec_hash"), recorded_live["context"].pop("spec_hash")
    assert caught == recorded_live
