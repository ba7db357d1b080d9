"""Transform over staged inputs: declarative operations and SQL, with column lineage and relationship."""

from __future__ import annotations

import pytest

from airflow_plugin.steps.context import StepFailure
from tests.airflow_plugin.steps.conftest import file_runtime


@pytest.fixture
def inputs(file_root, make_run, execute):
    (file_root / "orders.csv").write_text(
        "id,customer_id,amount,status\n1,10,5.0,paid\n2,10,7.5,paid\n3,11,1.0,void\n3,11,1.0,void\n4,12,2.0,paid\n"
    )
    (file_root / "customers.csv").write_text("customer_id,name\n10,Ada\n11,Bob\n")
    for name in ("orders", "customers"):
        execute(
            make_run(
                "extract",
                {"connector": "landing", "path": f"{name}.csv"},
                connectors={"landing": file_runtime(file_root)},
                output=name,
                task_id=f"extract_{name}",
            )
        )


def transform(make_run, config, inputs=("orders",)):
    return make_run("transform", config, inputs=list(inputs), output="result", task_id="shape")


def rows(staging, manifest):
    return staging.open_dataset(manifest["outputs"][0]["uri"]).to_table().to_pylist()


def test_transform_operations_chain_with_lineage(inputs, make_run, execute, staging):
    config = {
        "operations": [
            {"op": "deduplicate", "columns": ["id"]},
            {"op": "filter", "condition": "status = 'paid'"},
            {"op": "join", "dataset": "customers", "on": ["customer_id"], "how": "left"},
            {"op": "derive", "column": "amount_cents", "expression": "CAST(amount * 100 AS INTEGER)"},
            {"op": "rename", "columns": {"name": "customer_name"}},
            {"op": "cast", "columns": {"id": "VARCHAR"}},
            {"op": "select", "columns": ["id", "customer_name", "amount_cents"]},
        ]
    }
    manifest = execute(transform(make_run, config, inputs=("orders", "customers")))
    assert sorted(rows(staging, manifest), key=lambda r: r["id"]) == [
        {"id": "1", "customer_name": "Ada", "amount_cents": 500},
        {"id": "2", "customer_name": "Ada", "amount_cents": 750},
        {"id": "4", "customer_name": None, "amount_cents": 200},
    ]
    assert manifest["column_mapping"] == {
        "id": ["orders.id"],
        "customer_name": ["customers.name"],
        "amount_cents": ["orders.amount"],
    }
    assert manifest["relationship"] == "derived"
    assert [i["dataset"] for i in manifest["inputs"]] == ["orders", "customers"]


def test_transform_aggregate_reports_aggregated(inputs, make_run, execute, staging):
    config = {
        "operations": [
            {
                "op": "aggregate",
                "group_by": ["customer_id"],
                "aggregations": {"total": "sum(amount)", "n": "count(*)"},
            }
        ]
    }
    manifest = execute(transform(make_run, config))
    assert {r["customer_id"]: r["total"] for r in rows(staging, manifest)} == {10: 12.5, 11: 2.0, 12: 2.0}
    assert manifest["relationship"] == "aggregated"
    assert manifest["column_mapping"]["total"] == ["orders.amount"]


def test_transform_sql_over_inputs(inputs, make_run, execute, staging):
    sql = "SELECT o.id, c.name FROM orders o JOIN customers c USING (customer_id) WHERE o.amount > 2"
    manifest = execute(transform(make_run, {"sql": sql}, inputs=("orders", "customers")))
    assert sorted(r["id"] for r in rows(staging, manifest)) == [1, 2]
    assert manifest["column_mapping"] == {"id": ["orders.id"], "name": ["customers.name"]}
    assert manifest["relationship"] == "derived"


def test_transform_unknown_column_names_the_operation(inputs, make_run, execute):
    with pytest.raises(
        StepFailure, match=r"config.operations\[1\] \(select\): unknown column\(s\) \['nope'\]"
    ):
        execute(
            transform(
                make_run,
                {
                    "operations": [
                        {"op": "filter", "condition": "true"},
                        {"op": "select", "columns": ["nope"]},
                    ]
                },
            )
        )


def test_transform_bad_sql_fails_permanently(inputs, make_run, execute):
    with pytest.raises(StepFailure, match=r"^config\.sql: SQL failed: Binder Error") as caught:
        execute(transform(make_run, {"sql": "SELECT nope FROM orders"}))
    assert caught.value.retryable is False


def test_transform_missing_input_says_which(make_run, execute):
    with pytest.raises(StepFailure, match="input dataset 'orders' is not staged"):
        execute(transform(make_run, {"sql": "SELECT 1"}))
