"""run_step inside real Airflow (dag.test()): connectors from Django, masked secrets, manifests, exact loads."""

from __future__ import annotations

import json
import os
import runpy
from datetime import UTC, datetime

import pytest

from tests.support.servers import PG_PASSWORD

pytestmark = pytest.mark.integration

INPUT = (
    "id,customer,amount,updated_at\n1,ada,10.5,2025-01-02T01:00:00Z\n2,bob,-3,2025-01-02T02:00:00Z\n"
    "3,cy,7.25,2025-01-02T03:00:00Z\n3,cy,8.0,2025-01-02T04:00:00Z\n"
)


@pytest.fixture
def landing(tmp_path, settings):
    root = tmp_path / "landing"
    root.mkdir()
    settings.ETL_FILE_ROOTS = [str(root)]
    (root / "orders_2025-01-02.csv").write_text(INPUT)
    return root


@pytest.fixture
def connectors(transactional_db, organization, user, landing, pg_target):
    from django_etl.connectors.models import Connector, Credential

    runtime, _ = pg_target
    credential = Credential.objects.create_encrypted(
        name="warehouse login",
        organization=organization,
        data={"user": runtime["secret"]["user"], "password": PG_PASSWORD},
    )
    Connector.objects.create(
        name="landing",
        connector_type="file",
        organization=organization,
        created_by=user,
        config={"root": str(landing), "format": "csv"},
    )
    Connector.objects.create(
        name="warehouse",
        connector_type="database",
        organization=organization,
        created_by=user,
        config=runtime["config"],
        credential=credential,
    )
    return pg_target


@pytest.fixture
def run_pipeline(airflow_db, organization, user):
    """Make a Pipeline row and run a DAG of the real operators for it; returns (dag_run, dag_id)."""
    from django_etl.pipelines.models import Pipeline
    from django_etl.pipelines.naming import dag_id_for
    from tests.support.operator_dags import write_dag_file

    pipeline = Pipeline.objects.create(
        name="Orders",
        organization=organization,
        created_by=user,
        status="active",
        config={"schedule": "@daily"},
    )

    def run(steps: list[dict], logical_date: datetime):
        spec = {
            "dag_id": dag_id_for(pipeline.pk),
            "schedule": "@daily",
            "pipeline": {
                "id": str(pipeline.pk),
                "name": pipeline.name,
                "organization": organization.slug,
                "version": "1.0.0",
                "spec_hash": "sha256:test",
            },
            "steps": steps,
        }
        path = write_dag_file(os.environ["AIRFLOW__CORE__DAGS_FOLDER"], spec)
        dag = runpy.run_path(str(path))["dag"]
        return dag.test(logical_date=logical_date), spec["dag_id"]

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
    }


PIPELINE = [
    step(
        "extract_orders",
        "extract",
        {"connector": "landing", "path": "orders_{{ data_interval_start | strftime('%Y-%m-%d') }}.csv"},
        output="orders",
    ),
    step(
        "clean_orders",
        "transform",
        {
            "sql": "SELECT id, customer, amount, updated_at FROM orders WHERE amount > 0 "
            "QUALIFY row_number() OVER (PARTITION BY id ORDER BY updated_at DESC) = 1"
        },
        upstream=["extract_orders"],
        inputs=["orders"],
        output="clean",
    ),
    step(
        "check_orders",
        "validate",
        {
            "key_columns": ["id"],
            "checks": [
                {"check": "not_null", "columns": ["id", "amount"]},
                {"check": "unique", "columns": ["id"]},
                {"check": "row_count", "min": 1},
            ],
        },
        upstream=["clean_orders"],
        inputs=["clean"],
    ),
    step(
        "load_orders",
        "load",
        {"connector": "warehouse", "table": "orders", "mode": "upsert", "key": ["id"]},
        upstream=["check_orders"],
        inputs=["clean"],
    ),
]


def test_run_step_pipeline_twice_leaves_exact_rows(connectors, run_pipeline, landing):
    from django_etl.dataplane.staging import read_manifest

    _, conn = connectors
    first, dag_id = run_pipeline(PIPELINE, datetime(2025, 1, 2, tzinfo=UTC))
    assert first.state == "success"
    (landing / "orders_2025-01-03.csv").write_text(INPUT)  # the same input again, next day's run
    second, _ = run_pipeline(PIPELINE, datetime(2025, 1, 3, tzinfo=UTC))
    assert second.state == "success"
    rows = conn.execute("SELECT id, customer, amount FROM orders ORDER BY id").fetchall()
    assert rows == [(1, "ada", 10.5), (3, "cy", 8.0)]
    manifest = read_manifest(dag_id, first.run_id, "clean_orders")
    assert manifest["status"] == "success"
    assert manifest["metrics"]["rows_in"] == 4 and manifest["metrics"]["rows_out"] == 2
    assert manifest["relationship"] == "filtered"
    assert manifest["column_mapping"]["amount"] == ["orders.amount"]
    assert manifest["outputs"][0]["schema"][0] == {"name": "id", "type": "int64"}
    checks = read_manifest(dag_id, first.run_id, "check_orders")["checks"]
    assert [c["passed"] for c in checks] == [True, True, True]


def test_run_step_failing_check_fails_task_and_keeps_manifest(connectors, run_pipeline):
    from django_etl.dataplane.staging import read_manifest

    steps = [
        PIPELINE[0],
        step(
            "check_raw",
            "validate",
            {
                "key_columns": ["id"],
                "checks": [
                    {"check": "range", "column": "amount", "min": 0, "name": "amount_positive"},
                    {"check": "unique", "columns": ["id"], "severity": "warning"},
                ],
            },
            upstream=["extract_orders"],
            inputs=["orders"],
        ),
    ]
    dag_run, dag_id = run_pipeline(steps, datetime(2025, 1, 2, tzinfo=UTC))
    assert dag_run.state == "failed"
    manifest = read_manifest(dag_id, dag_run.run_id, "check_raw")
    assert manifest["status"] == "failed"
    assert "amount_positive" in manifest["error"] and "check_raw" in manifest["error"]
    by_name = {c["name"]: c for c in manifest["checks"]}
    assert by_name["amount_positive"] | {"message": None} == {
        "name": "amount_positive",
        "check": "range",
        "severity": "error",
        "passed": False,
        "failing_count": 1,
        "sample_keys": [2],
        "message": None,
    }
    assert by_name["unique(id)"]["passed"] is False and by_name["unique(id)"]["sample_keys"] == [3]


def test_run_step_canary_secret_never_leaks(connectors, run_pipeline, capfd):
    from airflow.models.renderedtifields import RenderedTaskInstanceFields
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    from django_etl.dataplane.staging import Staging

    steps = [
        *PIPELINE[:1],
        step(
            "load_raw",
            "load",
            {"connector": "warehouse", "table": "no_such_schema.t", "create_table": False},
            upstream=["extract_orders"],
            inputs=["orders"],
        ),
    ]
    dag_run, dag_id = run_pipeline(steps, datetime(2025, 1, 2, tzinfo=UTC))
    assert dag_run.state == "failed"
    staging = Staging().for_dag(dag_id)  # the pipeline's organization folder
    manifests = json.dumps(staging.run_manifests(dag_id, dag_run.run_id))
    assert 'schema \\"no_such_schema\\" does not exist' in manifests
    with create_session() as session:
        xcoms = [json.dumps(x.value, default=str) for x in session.query(XComModel).filter_by(dag_id=dag_id)]
        rendered = [
            json.dumps(r.rendered_fields, default=str)
            for r in session.query(RenderedTaskInstanceFields).filter_by(dag_id=dag_id)
        ]
    output = capfd.readouterr()
    assert xcoms and rendered
    for text in [manifests, *xcoms, *rendered, output.out, output.err]:
        assert PG_PASSWORD not in text
    from airflow.sdk.log import _secrets_masker

    assert PG_PASSWORD not in str(_secrets_masker().redact(f"password={PG_PASSWORD}"))


def test_run_step_bad_config_fails_without_retry_naming_the_step(connectors, run_pipeline):
    from django_etl.dataplane.staging import read_manifest

    steps = [step("extract_orders", "extract", {"connector": "nowhere", "path": "x.csv"}, output="orders")]
    dag_run, dag_id = run_pipeline(steps, datetime(2025, 1, 2, tzinfo=UTC))
    assert dag_run.state == "failed"
    manifest = read_manifest(dag_id, dag_run.run_id, "extract_orders")
    assert manifest["error"] == (
        "step 'extract_orders' (extract): no connector named 'nowhere' in the pipeline's organization"
    )


def test_run_step_past_its_execution_timeout_leaves_a_failed_manifest_saying_so(connectors, run_pipeline):
    """Airflow's AirflowTaskTimeout is a BaseException: the manifest must not call the try a success."""
    from django_etl.dataplane.staging import read_manifest

    slow = step(
        "extract_slow", "extract", {"connector": "warehouse", "query": "SELECT pg_sleep(8) AS x"}, output="x"
    )
    slow["execution_timeout_seconds"] = 2
    dag_run, dag_id = run_pipeline([slow], datetime(2025, 1, 2, tzinfo=UTC))
    assert dag_run.state == "failed"
    manifest = read_manifest(dag_id, dag_run.run_id, "extract_slow")
    assert manifest["status"] == "failed"
    assert manifest["error_type"] == "AirflowTaskTimeout"
    assert manifest["error"].startswith("step 'extract_slow' (extract): ")


def test_run_step_compiled_pipeline_twice_leaves_exact_rows(
    connectors, airflow_db, organization, user, landing
):
    """The independent check: a pipeline made in Django, compiled by the DAG compiler, run twice by Airflow."""
    from django_etl.pipelines.codegen import filename_for, render
    from django_etl.pipelines.dagspec import build_spec
    from django_etl.pipelines.models import Pipeline, PipelineStep

    _, conn = connectors
    pipeline = Pipeline.objects.create(
        name="Orders compiled",
        organization=organization,
        created_by=user,
        status="active",
        config={"schedule": "@daily", "start_date": "2025-01-01", "retries": 0},
    )
    configs = [
        ("extract orders", "extract", {**PIPELINE[0]["config"], "output": "orders"}),
        ("clean orders", "transform", {**PIPELINE[1]["config"], "output": "clean"}),
        ("check orders", "validate", PIPELINE[2]["config"]),
        ("load orders", "load", PIPELINE[3]["config"]),
    ]
    for position, (name, step_type, config) in enumerate(configs):
        PipelineStep.objects.create(
            pipeline=pipeline, name=name, step_type=step_type, config=config, order_index=position
        )
    spec, report = build_spec(Pipeline.objects.get(pk=pipeline.pk))
    assert spec is not None, report
    path = os.path.join(os.environ["AIRFLOW__CORE__DAGS_FOLDER"], filename_for(spec["pipeline"]["dag_id"]))
    with open(path, "w") as handle:
        handle.write(render(spec))
    dag = runpy.run_path(path)["dag"]
    (landing / "orders_2025-01-03.csv").write_text(INPUT)
    for day in (2, 3):
        assert dag.test(logical_date=datetime(2025, 1, day, tzinfo=UTC)).state == "success"
    rows = conn.execute("SELECT id, customer, amount FROM orders ORDER BY id").fetchall()
    assert rows == [(1, "ada", 10.5), (3, "cy", 8.0)]


def test_airflow_error_retryable_versus_permanent():
    import psycopg
    from airflow.sdk.exceptions import AirflowException, AirflowFailException

    from airflow_plugin.runtime import airflow_error
    from airflow_plugin.steps.context import StepFailure
    from django_etl.errors import ConnectorError, SchemaDriftError

    retryable = [ConnectorError("HTTP 503", retryable=True), psycopg.OperationalError("gone"), TimeoutError()]
    permanent = [
        StepFailure("bad config"),
        SchemaDriftError("drift"),
        psycopg.errors.UndefinedTable("t"),
        ValueError("bad value"),
    ]
    for exc in retryable:
        error = airflow_error(exc, "m")
        assert type(error) is AirflowException, exc
    for exc in permanent:
        assert isinstance(airflow_error(exc, "m"), AirflowFailException), exc
