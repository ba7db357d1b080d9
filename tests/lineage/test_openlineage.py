"""OpenLineage: dataset names of real tables, files and objects; facets from manifests; events of a real run."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.lineage.conftest import RECORDER_DATABASES

HOST = socket.gethostname()
REPO = Path(__file__).resolve().parents[2]


# ---------------------------------------------------------------- naming
@pytest.mark.parametrize(
    ("connector_type", "connector", "step", "expected"),
    [
        (
            "database",
            {"engine": "postgresql", "host": "db.internal", "port": 6432, "database": "shop"},
            {"table": "sales.orders"},
            ("postgres://db.internal:6432", "shop.sales.orders"),
        ),
        (
            "database",
            {"engine": "postgresql", "host": "db.internal", "database": "shop", "schema": "crm"},
            {"table": "customers"},
            ("postgres://db.internal:5432", "shop.crm.customers"),
        ),
        (
            "database",
            {"engine": "sqlite", "path": "/data/crm.sqlite3"},
            {"table": "customers"},
            (f"sqlite://{HOST}/data/crm.sqlite3", "customers"),
        ),
        (
            "file",
            {"root": "/data/landing"},
            {"path": "in/orders.csv"},
            (f"file://{HOST}", "/data/landing/in/orders.csv"),
        ),
        (
            "cloud",
            {"bucket": "lake", "prefix": "/raw/"},
            {"path": "orders.parquet"},
            ("s3://lake", "raw/orders.parquet"),
        ),
        (
            "api",
            {"base_url": "https://api.example.com:8443/v2/"},
            {"endpoint": "/orders"},
            ("https://api.example.com:8443", "/v2/orders"),
        ),
    ],
)
def test_dataset_locations_follow_the_naming_spec(connector_type, connector, step, expected):
    from airflow_plugin.openlineage import dataset_locations

    runtime = {"crm": {"type": connector_type, "config": connector, "secret": {"password": "never-read"}}}
    found = dataset_locations("extract", {"connector": "crm", **step}, runtime)["source"]
    assert (found["namespace"], found["name"]) == expected
    assert "never-read" not in json.dumps(found)


def test_dataset_locations_of_a_query_name_the_tables_it_reads():
    from airflow_plugin.openlineage import dataset_locations

    runtime = {
        "pg": {"type": "database", "config": {"engine": "postgresql", "host": "h", "database": "shop"}}
    }
    query = "WITH recent AS (SELECT * FROM sales.orders) SELECT r.*, c.name FROM recent r JOIN customers c USING (id)"
    found = dataset_locations("extract", {"connector": "pg", "query": query}, runtime)["source"]
    assert found["query"] is True
    assert found["tables"] == [
        {"namespace": "postgres://h:5432", "name": "shop.public.customers"},
        {"namespace": "postgres://h:5432", "name": "shop.sales.orders"},
    ]


def test_dataset_locations_of_a_load_name_its_target_and_of_a_transform_nothing():
    from airflow_plugin.openlineage import dataset_locations

    runtime = {"wh": {"type": "database", "config": {"engine": "postgresql", "host": "h", "database": "dw"}}}
    assert dataset_locations("load", {"connector": "wh", "table": "fact_orders"}, runtime) == {
        "target": {
            "namespace": "postgres://h:5432",
            "name": "dw.public.fact_orders",
            "kind": "table",
            "connector": "wh",
        }
    }
    assert dataset_locations("transform", {"sql": "SELECT 1"}, runtime) == {}


# ---------------------------------------------------------------- facets from a manifest
def test_operator_lineage_of_a_load_maps_table_columns_to_the_staged_dataset():
    from airflow_plugin.openlineage import operator_lineage

    staged = {
        "dataset": "orders_enriched",
        "uri": "/staging/org_1/dag/run/enrich/data/orders_enriched",
        "rows": 5,
        "schema": [{"name": "order_id", "type": "int64"}, {"name": "amount", "type": "double"}],
    }
    manifest = {
        "step_type": "load",
        "status": "success",
        "inputs": [staged],
        "outputs": [{"dataset": "fact_orders", "uri": "x", "rows": 5}],
        "locations": {"target": {"namespace": "postgres://h:5432", "name": "dw.public.fact_orders"}},
    }
    lineage = operator_lineage(manifest, dag_id="pipeline_x")
    [source] = lineage.inputs
    assert (source.namespace, source.name) == (f"file://{HOST}", staged["uri"])
    assert source.facets["symlinks"].identifiers[0].name == "orders_enriched"
    [target] = lineage.outputs
    assert (target.namespace, target.name) == ("postgres://h:5432", "dw.public.fact_orders")
    assert [f.name for f in target.facets["schema"].fields] == ["order_id", "amount"]
    field = target.facets["columnLineage"].fields["amount"].inputFields[0]
    assert (field.namespace, field.name, field.field) == (f"file://{HOST}", staged["uri"], "amount")
    assert (field.transformations[0].type, field.transformations[0].subtype) == ("DIRECT", "IDENTITY")
    assert target.outputFacets["outputStatistics"].rowCount == 5


def test_operator_lineage_without_manifest_is_empty():
    from airflow_plugin.openlineage import operator_lineage

    lineage = operator_lineage(None)
    assert lineage.inputs == [] and lineage.outputs == []


# ---------------------------------------------------------------- a real run, events captured by a file transport
PIPELINE = [
    ("Extract orders", "extract", {"connector": "landing", "path": "orders.csv", "output": "orders"}, []),
    (
        "Revenue",
        "transform",
        {
            "inputs": ["orders"],
            "output": "revenue",
            "sql": "SELECT customer_id AS customer, sum(amount) AS revenue FROM orders "
            "WHERE status = 'paid' GROUP BY customer_id",
        },
        ["Extract orders"],
    ),
    ("Check revenue", "validate", {"checks": [{"check": "row_count", "min": 1}]}, ["Revenue"]),
    (
        "Load revenue",
        "load",
        {"connector": "warehouse", "table": "revenue", "mode": "replace"},
        ["Check revenue"],
    ),
]

RUN_SCRIPT = """
import sys
from django_etl.startup import setup_django
setup_django()
from django_etl.runs.demo_run import run_pipeline
run = run_pipeline(sys.argv[1], out=lambda line: None)
print("STATUS", run.status if run else None)
"""


def run_with_openlineage(pipeline_name: str, tmp_path: Path, file_roots: str) -> list[dict]:
    """Run the pipeline in a fresh interpreter with OpenLineage on (a file transport); its events."""
    from django.db import connection

    events = tmp_path / "openlineage.jsonl"
    home = tmp_path / "airflow"
    (home / "dags").mkdir(parents=True)
    server = os.environ["DATABASE_URL"].rsplit("/", 1)[0]
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "DATABASE_URL": f"{server}/{connection.settings_dict['NAME']}",
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
        "ETL_DAGS_FOLDER": str(home / "dags"),
        "ETL_FILE_ROOTS": file_roots,
        "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(
            {"type": "file", "log_file_path": str(events), "append": True}
        ),
        "AIRFLOW__OPENLINEAGE__NAMESPACE": "etl-tests",
    }
    done = subprocess.run(
        [sys.executable, "-c", RUN_SCRIPT, pipeline_name],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert "STATUS success" in done.stdout, done.stdout[-3000:] + done.stderr[-3000:]
    return [json.loads(line) for line in events.read_text().splitlines() if line.strip()]


@pytest.mark.integration
@pytest.mark.django_db(transaction=True, databases=RECORDER_DATABASES)
def test_openlineage_events_of_a_run_carry_datasets_and_columns(sources, make_pipeline, tmp_path):
    pipeline = make_pipeline("Revenue lineage", PIPELINE)
    events = run_with_openlineage(pipeline.name, tmp_path / "run", str(sources["landing"].parent))
    complete = {
        e["job"]["name"].split(".", 1)[1]: e
        for e in events
        if e["eventType"] == "COMPLETE" and e["job"]["name"].startswith(pipeline.dag_id + ".")
    }
    assert set(complete) == {"extract_orders", "revenue", "check_revenue", "load_revenue"}
    assert {e["job"]["namespace"] for e in complete.values()} == {"etl-tests"}

    def names(datasets):
        return [(d["namespace"], d["name"]) for d in datasets]

    extract = complete["extract_orders"]
    assert names(extract["inputs"]) == [(f"file://{HOST}", str(sources["landing"] / "orders.csv"))]
    [staged_orders] = extract["outputs"]
    assert staged_orders["namespace"] == f"file://{HOST}" and staged_orders["name"].endswith("/data/orders")
    assert [f["name"] for f in staged_orders["facets"]["schema"]["fields"]] == [
        "order_id",
        "customer_id",
        "amount",
        "status",
    ]
    assert staged_orders["facets"]["columnLineage"]["fields"]["amount"]["inputFields"][0]["name"] == str(
        sources["landing"] / "orders.csv"
    )

    revenue = complete["revenue"]
    assert names(revenue["inputs"]) == names(extract["outputs"])
    [staged_revenue] = revenue["outputs"]
    columns = staged_revenue["facets"]["columnLineage"]["fields"]
    assert set(columns) == {"customer", "revenue"}
    [amount] = columns["revenue"]["inputFields"]
    assert (amount["name"], amount["field"]) == (staged_orders["name"], "amount")
    assert amount["transformations"][0]["subtype"] == "AGGREGATION"
    assert columns["customer"]["inputFields"][0]["field"] == "customer_id"

    check = complete["check_revenue"]
    assert names(check["inputs"]) == names(revenue["outputs"]) and check["outputs"] == []
    assert check["inputs"][0]["inputFacets"]["dataQualityAssertions"]["assertions"][0]["success"] is True

    load = complete["load_revenue"]
    assert names(load["inputs"]) == names(revenue["outputs"])
    assert names(load["outputs"]) == [(f"sqlite://{HOST}{sources['warehouse']}", "revenue")]
    table_columns = load["outputs"][0]["facets"]["columnLineage"]["fields"]
    assert table_columns["revenue"]["inputFields"][0]["field"] == "revenue"
    assert load["outputs"][0]["outputFacets"]["outputStatistics"]["rowCount"] == 2


def test_openlineage_is_off_unless_configured():
    from airflow.providers.openlineage import conf
    from airflow.providers.openlineage.plugins.openlineage import OpenLineageProviderPlugin

    assert not any(k.startswith(("AIRFLOW__OPENLINEAGE__", "OPENLINEAGE_")) for k in os.environ)
    assert conf.is_disabled()
    assert OpenLineageProviderPlugin.listeners == []
