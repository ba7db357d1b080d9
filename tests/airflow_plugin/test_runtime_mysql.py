"""MySQL/MariaDB through the platform in real Airflow (dag.test()): MySQL -> PostgreSQL incrementally, and
PostgreSQL -> MySQL, each run twice, leaving exact rows."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from tests.airflow_plugin.test_runtime import run_pipeline, step  # noqa: F401 - the fixture and helper
from tests.support import mysql_server
from tests.support.servers import PG_PASSWORD

pytestmark = pytest.mark.integration
mysql_target = mysql_server.mysql_target


@pytest.fixture
def databases(transactional_db, organization, user, pg_target, mysql_target):
    """Connectors 'shop' (MySQL) and 'warehouse' (PostgreSQL) of the organization."""
    from django_etl.connectors.models import Connector, Credential

    runtime, conn = pg_target
    for name, config, secret in (
        ("warehouse", runtime["config"], {"user": runtime["secret"]["user"], "password": PG_PASSWORD}),
        ("shop", mysql_target.runtime["config"], mysql_target.runtime["secret"]),
    ):
        Connector.objects.create(
            name=name,
            connector_type="database",
            organization=organization,
            created_by=user,
            config=config,
            credential=Credential.objects.create_encrypted(
                name=f"{name} login", organization=organization, data=secret
            ),
        )
    return conn, mysql_target


def test_runtime_mysql_to_postgres_incremental_twice_exact_rows(databases, run_pipeline):  # noqa: F811
    pg, shop = databases
    shop.execute(
        "CREATE TABLE orders (id INT PRIMARY KEY, customer VARCHAR(20), amount DECIMAL(10, 2), "
        "paid TINYINT(1), updated_at DATETIME(6))"
    )
    shop.execute(
        "INSERT INTO orders VALUES (1, 'ada', 10.50, 1, '2025-01-01 10:00:00'), "
        "(2, 'bob', NULL, 0, '2025-01-01 11:00:00'), (3, 'cy', 7.25, 1, '2025-01-01 12:00:00')"
    )
    steps = [
        step(
            "extract_orders",
            "extract",
            {"connector": "shop", "table": "orders", "watermark_column": "updated_at"},
            output="orders",
        ),
        step(
            "load_orders",
            "load",
            {"connector": "warehouse", "table": "orders", "mode": "upsert", "key": ["id"]},
            upstream=["extract_orders"],
            inputs=["orders"],
        ),
    ]
    first, dag_id = run_pipeline(steps, datetime(2025, 1, 2, tzinfo=UTC))
    assert first.state == "success"
    # What write-back does after a successful run (this harness has no callbacks): promote its watermark.
    from django_etl.dataplane.staging import Staging, read_manifest

    Staging().for_dag(dag_id).delete_run(dag_id, first.run_id)
    shop.execute("UPDATE orders SET amount = 12.00, updated_at = '2025-01-02 09:00:00' WHERE id = 1")
    shop.execute("INSERT INTO orders VALUES (4, 'dee', 1.00, 0, '2025-01-02 10:00:00')")
    second, _ = run_pipeline(steps, datetime(2025, 1, 3, tzinfo=UTC))
    assert second.state == "success"
    rows = pg.execute("SELECT id, customer, amount, paid FROM orders ORDER BY id").fetchall()
    assert rows == [
        (1, "ada", Decimal("12.00"), True),
        (2, "bob", None, False),
        (3, "cy", Decimal("7.25"), True),
        (4, "dee", Decimal("1.00"), False),
    ]
    assert (
        read_manifest(dag_id, second.run_id, "extract_orders")["metrics"]["rows_in"] == 2
    )  # only newer rows


def test_runtime_postgres_to_mysql_twice_exact_rows(databases, run_pipeline):  # noqa: F811
    pg, shop = databases
    pg.execute("CREATE TABLE customers (id bigint PRIMARY KEY, name text, since timestamptz, vip boolean)")
    pg.execute(
        "INSERT INTO customers VALUES (1, 'Ada', '2024-05-01 10:00:00+02', true), (2, 'Bob', NULL, false), "
        "(3, 'Émile', '2024-06-01 00:00:00+00', NULL)"
    )
    steps = [
        step(
            "extract_customers",
            "extract",
            {"connector": "warehouse", "query": "SELECT id, name, since, vip FROM customers"},
            output="customers",
        ),
        step(
            "load_customers",
            "load",
            {"connector": "shop", "table": "customers", "mode": "upsert", "key": ["id"]},
            upstream=["extract_customers"],
            inputs=["customers"],
        ),
    ]
    assert run_pipeline(steps, datetime(2025, 1, 2, tzinfo=UTC))[0].state == "success"
    pg.execute("UPDATE customers SET name = 'Bobby' WHERE id = 2")
    assert run_pipeline(steps, datetime(2025, 1, 3, tzinfo=UTC))[0].state == "success"
    assert shop.execute("SELECT id, name, since, vip FROM customers ORDER BY id") == [
        (1, "Ada", datetime(2024, 5, 1, 8, 0), 1),  # the instant in UTC
        (2, "Bobby", None, 0),
        (3, "Émile", datetime(2024, 6, 1, 0, 0), None),
    ]
    assert shop.execute("SELECT count(*) FROM etl_load_ledger") == [(2,)]


def test_runtime_mysql_compiled_pipeline_runs_through_the_platform(databases, airflow_db, organization, user):
    """A pipeline made in Django with a MySQL source, validated and compiled by the DAG compiler, run by Airflow:
    MySQL -> transform -> PostgreSQL, twice."""
    import os
    import runpy

    from django_etl.pipelines.codegen import filename_for, render
    from django_etl.pipelines.dagspec import build_spec
    from django_etl.pipelines.models import Pipeline, PipelineStep

    pg, shop = databases
    shop.execute("CREATE TABLE sales (id INT PRIMARY KEY, amount DECIMAL(8, 2), sold DATETIME)")
    shop.execute(
        "INSERT INTO sales VALUES (1, 9.99, '2025-01-01 08:00:00'), (2, 0.00, '2025-01-01 09:00:00')"
    )
    pipeline = Pipeline.objects.create(
        name="Sales compiled",
        organization=organization,
        created_by=user,
        status="active",
        config={"schedule": "@daily", "start_date": "2025-01-01", "retries": 0},
    )
    configs = [
        (
            "extract sales",
            "extract",
            {"connector": "shop", "query": "SELECT * FROM sales", "output": "sales"},
        ),
        ("paid sales", "transform", {"sql": "SELECT * FROM sales WHERE amount > 0", "output": "paid"}),
        ("load sales", "load", {"connector": "warehouse", "table": "sales", "mode": "upsert", "key": ["id"]}),
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
    for day in (2, 3):
        assert dag.test(logical_date=datetime(2025, 1, day, tzinfo=UTC)).state == "success"
    assert pg.execute("SELECT id, amount, sold FROM sales").fetchall() == [
        (1, Decimal("9.99"), datetime(2025, 1, 1, 8, 0))
    ]
