"""The sandboxes inside real Airflow (dag.test()): a hostile template or SQL fails its task once, without retry."""

from __future__ import annotations

import json
import os
import runpy
from datetime import UTC, datetime

import pytest

from tests.security.conftest import CANARY_VARIABLE

pytestmark = pytest.mark.integration

DAY = datetime(2025, 1, 2, tzinfo=UTC)


@pytest.fixture
def landing(tmp_path, settings):
    root = tmp_path / "landing"
    root.mkdir()
    settings.ETL_FILE_ROOTS = [str(root)]
    (root / "orders_2025-01-02.csv").write_text("id,status\n1,paid\n2,void\n")
    return root


@pytest.fixture
def run_pipeline(airflow_db, transactional_db, organization, user, landing):
    """Run a DAG of the real operators for a Pipeline row; returns (dag_run, dag_id)."""
    from django_etl.connectors.models import Connector
    from django_etl.pipelines.models import Pipeline
    from django_etl.pipelines.naming import dag_id_for
    from tests.support.operator_dags import write_dag_file

    Connector.objects.create(
        name="landing",
        connector_type="file",
        organization=organization,
        created_by=user,
        config={"root": str(landing), "format": "csv"},
    )
    pipeline = Pipeline.objects.create(
        name="Hostile", organization=organization, created_by=user, status="active", config={}
    )

    def run(steps: list[dict], run_conf: dict | None = None):
        spec = {
            "dag_id": dag_id_for(pipeline.pk),
            "schedule": "@daily",
            "pipeline": {"id": str(pipeline.pk), "name": pipeline.name, "organization": organization.slug},
            "steps": steps,
        }
        path = write_dag_file(os.environ["AIRFLOW__CORE__DAGS_FOLDER"], spec)
        dag = runpy.run_path(str(path))["dag"]
        return dag.test(logical_date=DAY, run_conf=run_conf), spec["dag_id"]

    return run


def step(name, step_type, config, upstream=(), inputs=(), output=None):
    return {
        "id": f"id-{name}",
        "name": name,
        "task_id": name,
        "step_type": step_type,
        "config": config,
        "upstream": list(upstream),
        "inputs": list(inputs),
        "output": output,
        "retries": 2,  # a sandbox refusal must not be retried
    }


EXTRACT = step(
    "extract_orders",
    "extract",
    {"connector": "landing", "path": "orders_{{ ds }}.csv"},
    output="orders",
)


def task_attempts(dag_id: str, run_id: str) -> dict[str, tuple[str, int]]:
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.query(TaskInstance).filter_by(dag_id=dag_id, run_id=run_id).all()
        return {ti.task_id: (str(ti.state), ti.try_number) for ti in rows}


def rendered_fields(dag_id: str) -> dict[str, dict]:
    from airflow.models.renderedtifields import RenderedTaskInstanceFields
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.query(RenderedTaskInstanceFields).filter_by(dag_id=dag_id).all()
        return {r.task_id: r.rendered_fields for r in rows}


def test_airflow_hostile_template_fails_once_without_leaking(run_pipeline, capfd):
    from django_etl.dataplane.staging import read_manifest

    hostile = step(
        "extract_orders",
        "extract",
        {"connector": "landing", "path": "{{ macros.uuid.os.environ.get('" + CANARY_VARIABLE + "') }}.csv"},
        output="orders",
    )
    os.environ[CANARY_VARIABLE] = canary = "canary-env-airflow-template"
    try:
        dag_run, dag_id = run_pipeline([hostile])
    finally:
        del os.environ[CANARY_VARIABLE]
    assert dag_run.state == "failed"
    assert task_attempts(dag_id, dag_run.run_id) == {"extract_orders": ("failed", 1)}
    manifest = read_manifest(dag_id, dag_run.run_id, "extract_orders")
    assert manifest["error"].startswith("step 'extract_orders' (extract): config.path: ")
    assert "'macros' is not available in templates" in manifest["error"]
    output = capfd.readouterr()
    for text in (json.dumps(manifest), output.out, output.err, json.dumps(rendered_fields(dag_id))):
        assert canary not in text


def test_airflow_hostile_sql_fails_once_without_leaking(run_pipeline, capfd):
    from django_etl.dataplane.staging import read_manifest

    os.environ[CANARY_VARIABLE] = canary = "canary-env-airflow-duckdb"
    steps = [
        EXTRACT,
        step(
            "shape",
            "transform",
            {"sql": "SELECT * FROM orders, read_text('/proc/self/environ')"},
            upstream=["extract_orders"],
            inputs=["orders"],
            output="shaped",
        ),
    ]
    try:
        dag_run, dag_id = run_pipeline(steps)
    finally:
        del os.environ[CANARY_VARIABLE]
    assert dag_run.state == "failed"
    assert task_attempts(dag_id, dag_run.run_id) == {
        "extract_orders": ("success", 1),
        "shape": ("failed", 1),
    }
    manifest = read_manifest(dag_id, dag_run.run_id, "shape")
    assert manifest["error"] == (
        "step 'shape' (transform): config.sql: table function 'read_text' is not allowed "
        "(allowed: generate_series, json_each, json_tree, range, repeat, unnest)"
    )
    output = capfd.readouterr()
    for text in (json.dumps(manifest), output.out, output.err):
        assert canary not in text


def test_airflow_conf_value_reaches_sql_quoted(run_pipeline):
    from django_etl.dataplane.staging import Staging, read_manifest

    steps = [
        EXTRACT,
        step(
            "shape",
            "transform",
            {"sql": "SELECT id FROM orders WHERE status = {{ conf.status | sql_literal }}"},
            upstream=["extract_orders"],
            inputs=["orders"],
            output="shaped",
        ),
    ]
    dag_run, dag_id = run_pipeline(steps, run_conf={"status": "paid' OR '1'='1"})
    assert dag_run.state == "success"
    manifest = read_manifest(dag_id, dag_run.run_id, "shape")
    assert manifest["metrics"]["rows_out"] == 0  # the whole value is one literal: no row has that status
    rows = Staging().open_dataset(manifest["outputs"][0]["uri"]).to_table().to_pylist()
    assert rows == []
    # Airflow's "Rendered Template" view shows the sandbox's rendering.
    assert rendered_fields(dag_id)["shape"]["config"] == {
        "sql": "SELECT id FROM orders WHERE status = 'paid'' OR ''1''=''1'"
    }
