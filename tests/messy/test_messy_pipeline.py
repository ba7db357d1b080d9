"""Messy sources through real Airflow and write-back: compiled pipelines run by dag.test(), records in Django."""

from __future__ import annotations

import os
import runpy
from datetime import UTC, datetime

import pytest

from tests.airflow_plugin.conftest import RECORDER_DATABASES
from tests.support.servers import PG_PASSWORD, TOKEN

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True, databases=RECORDER_DATABASES)]


@pytest.fixture
def landing(tmp_path, settings):
    root = tmp_path / "landing"
    root.mkdir()
    settings.ETL_FILE_ROOTS = [str(root)]
    return root


@pytest.fixture
def connectors(organization, user, pg_target, messy_api, landing):
    from django_etl.connectors.models import Connector, Credential

    runtime, conn = pg_target
    login = Credential.objects.create_encrypted(
        name="warehouse login",
        organization=organization,
        data={"user": runtime["secret"]["user"], "password": PG_PASSWORD},
    )
    token = Credential.objects.create_encrypted(
        name="shop token", organization=organization, data={"token": TOKEN}
    )
    Connector.objects.create(
        name="warehouse",
        connector_type="database",
        organization=organization,
        created_by=user,
        config=runtime["config"],
        credential=login,
    )
    Connector.objects.create(
        name="shop",
        connector_type="api",
        organization=organization,
        created_by=user,
        config={"base_url": messy_api.base_url, "auth": "bearer", "max_retries": 0},
        credential=token,
    )
    Connector.objects.create(
        name="landing",
        connector_type="file",
        organization=organization,
        created_by=user,
        config={"root": str(landing), "format": "csv"},
    )
    return conn


@pytest.fixture
def run_pipeline(airflow_db, organization, user):
    """Make a pipeline of (name, type, config) steps in Django, compile it, run it once; its PipelineRun."""
    from airflow_plugin import writeback
    from django_etl.pipelines.codegen import filename_for, render
    from django_etl.pipelines.dagspec import build_spec
    from django_etl.pipelines.models import Pipeline, PipelineStep
    from django_etl.runs.models import PipelineRun

    made = {}

    def run(name: str, steps: list[tuple[str, str, dict]], day: int = 2):
        if name not in made:
            pipeline = Pipeline.objects.create(
                name=name,
                organization=organization,
                created_by=user,
                status="active",
                config={"schedule": "@daily", "start_date": "2025-01-01", "retries": 0},
            )
            for position, (step_name, step_type, config) in enumerate(steps):
                PipelineStep.objects.create(
                    pipeline=pipeline,
                    name=step_name,
                    step_type=step_type,
                    config=config,
                    order_index=position,
                )
            spec, report = build_spec(Pipeline.objects.get(pk=pipeline.pk))
            assert spec is not None, report
            path = os.path.join(
                os.environ["AIRFLOW__CORE__DAGS_FOLDER"], filename_for(spec["pipeline"]["dag_id"])
            )
            with open(path, "w") as handle:
                handle.write(render(spec))
            made[name] = (pipeline, runpy.run_path(path)["dag"])
        pipeline, dag = made[name]
        dag_run = dag.test(logical_date=datetime(2025, 1, day, tzinfo=UTC))
        assert writeback.flush(timeout=60), "write-back did not finish within 60 s"
        return dag_run, PipelineRun.objects.filter(pipeline=pipeline).order_by("-started_at").first()

    return run


def statuses(pipeline_run) -> dict[str, str]:
    return {tr.pipeline_step.name: tr.status for tr in pipeline_run.task_runs.select_related("pipeline_step")}


def test_messy_first_empty_api_run_skips_the_dataset_steps_and_records_them(connectors, run_pipeline):
    steps = [
        ("fetch orders", "extract", {"connector": "shop", "endpoint": "empty", "records_path": "results"}),
        ("clean orders", "transform", {"sql": "SELECT * FROM fetch_orders"}),
        ("load orders", "load", {"connector": "warehouse", "table": "orders", "mode": "append"}),
    ]
    dag_run, pipeline_run = run_pipeline("Empty API", steps)
    assert dag_run.state == "success"
    assert statuses(pipeline_run) == {
        "fetch orders": "success",
        "clean orders": "skipped",
        "load orders": "skipped",
    }
    assert pipeline_run.status == "success"


def test_messy_zero_row_replace_fails_with_a_data_quality_alert(connectors, run_pipeline, landing):
    from django_etl.monitoring.models import Alert

    connectors.execute("CREATE TABLE orders (id bigint, amount double precision)")
    connectors.execute("INSERT INTO orders VALUES (1, 2.5)")
    (landing / "orders.csv").write_text("id,amount\n")
    steps = [
        ("read orders", "extract", {"connector": "landing", "path": "orders.csv"}),
        ("replace orders", "load", {"connector": "warehouse", "table": "orders", "mode": "replace"}),
    ]
    dag_run, pipeline_run = run_pipeline("Empty replace", steps)
    assert dag_run.state == "failed"
    assert statuses(pipeline_run) == {"read orders": "success", "replace orders": "failed"}
    alert = Alert.objects.get(pipeline_run=pipeline_run, alert_type="data_quality")
    assert alert.level == "error"
    assert "refused to replace 'orders' with zero rows" in alert.message
    assert connectors.execute("SELECT count(*) FROM orders").fetchone()[0] == 1


def test_messy_new_column_between_runs_is_named_in_an_alert(connectors, run_pipeline, messy_api):
    from django_etl.monitoring.models import Alert

    steps = [
        ("fetch orders", "extract", {"connector": "shop", "endpoint": "orders", "records_path": "results"}),
        (
            "load orders",
            "load",
            {
                "connector": "warehouse",
                "table": "orders",
                "mode": "append",
                "on_schema_change": "append_new_columns",
            },
        ),
    ]
    first, _ = run_pipeline("Drifting API", steps, day=2)
    assert first.state == "success"
    messy_api.state["orders"] = [{"id": 3, "amount": 1.0, "channel": "web"}]
    second, pipeline_run = run_pipeline("Drifting API", steps, day=3)
    assert second.state == "success"
    alert = Alert.objects.get(pipeline_run=pipeline_run, alert_type="data_quality")
    assert alert.level == "warning"
    assert (
        alert.metadata["columns"] == ["channel"]
        and alert.metadata["on_schema_change"] == "append_new_columns"
    )
    assert "staged column(s) ['channel'] are not in table 'orders'" in alert.message
    assert connectors.execute("SELECT id, channel FROM orders ORDER BY id").fetchall() == [
        (1, None),
        (2, None),
        (3, "web"),
    ]
