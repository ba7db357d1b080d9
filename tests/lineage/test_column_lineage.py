"""Column lineage of transforms: declarative operations and free SQL (sqlglot), over a real locked DuckDB."""

from __future__ import annotations

import pyarrow as pa
import pytest

ORDERS = pa.table(
    {
        "order_id": [1, 2, 3],
        "customer_id": [10, 10, 11],
        "amount": [5.0, 7.5, 1.0],
        "status": ["paid", "paid", "void"],
    }
)
CUSTOMERS = pa.table({"customer_id": [10, 11], "name": ["Ada", "Bob"], "country": ["FR", "DE"]})
INPUTS = {"orders": ORDERS.column_names, "customers": CUSTOMERS.column_names}


def source(dataset, column, transformation="direct"):
    return {"dataset": dataset, "column": column, "transformation": transformation}


@pytest.fixture
def box():
    import pyarrow.dataset as ds

    from airflow_plugin.steps.sqlbox import SqlBox

    with SqlBox("lineage") as sandbox:
        sandbox.register("orders", ds.dataset(ORDERS))
        sandbox.register("customers", ds.dataset(CUSTOMERS))
        yield sandbox


def operations(box, ops):
    from airflow_plugin.steps.sqlbuild import OperationCompiler
    from django_etl.stepkinds.schemas import TransformConfig

    config = TransformConfig.model_validate({"operations": ops})
    compiler = OperationCompiler("orders", INPUTS, box)
    for index, operation in enumerate(config.operations, start=1):
        compiler.apply(index, operation)
    box.fetch(compiler.sql)  # the compiled SQL runs
    return compiler.column_lineage()


def sql(box, text):
    from airflow_plugin.steps.sqlbuild import sql_column_lineage

    checked = box.check_select(text, "config.sql")
    return sql_column_lineage(checked, INPUTS, box.columns(checked))


def test_column_lineage_operations_join(box):
    doc = operations(box, [{"op": "join", "dataset": "customers", "on": ["customer_id"], "how": "inner"}])
    assert doc["status"] == "known"
    assert doc["columns"]["customer_id"] == [
        source("customers", "customer_id"),
        source("orders", "customer_id"),
    ]
    assert doc["columns"]["name"] == [source("customers", "name")]
    assert doc["columns"]["amount"] == [source("orders", "amount")]


def test_column_lineage_operations_aggregation(box):
    doc = operations(
        box,
        [
            {"op": "filter", "condition": "status = 'paid'"},
            {
                "op": "aggregate",
                "group_by": ["customer_id"],
                "aggregations": {"revenue": "sum(amount)", "n": "count(*)"},
            },
        ],
    )
    assert doc["columns"] == {
        "customer_id": [source("orders", "customer_id", "filtered")],
        "revenue": [source("orders", "amount", "aggregated")],
        "n": [],  # count(*) reads no column
    }


def test_column_lineage_operations_rename_and_derive(box):
    doc = operations(
        box,
        [
            {"op": "rename", "columns": {"amount": "total"}},
            {"op": "derive", "column": "label", "expression": "status || ' order'"},
            {"op": "select", "columns": ["order_id", "total", "label"]},
        ],
    )
    assert doc["columns"] == {
        "order_id": [source("orders", "order_id")],
        "total": [source("orders", "amount")],
        "label": [source("orders", "status", "derived")],
    }


def test_column_lineage_operations_string_literal_is_no_column(box):
    # 'amount' in quotes is a string, not the column amount
    doc = operations(box, [{"op": "derive", "column": "kind", "expression": "'amount'"}])
    assert doc["columns"]["kind"] == []


def test_column_lineage_sql_join(box):
    doc = sql(
        box,
        "SELECT o.order_id, c.name AS customer, c.country FROM orders o JOIN customers c USING (customer_id)",
    )
    assert doc == {
        "status": "known",
        "reason": None,
        "columns": {
            "order_id": [source("orders", "order_id")],
            "customer": [source("customers", "name")],
            "country": [source("customers", "country")],
        },
    }


def test_column_lineage_sql_aggregation_through_a_cte(box):
    doc = sql(
        box,
        "WITH paid AS (SELECT * FROM orders WHERE status = 'paid') "
        "SELECT customer_id, sum(amount) AS revenue, max(amount) * 2 AS top FROM paid GROUP BY customer_id",
    )
    assert doc["columns"] == {
        "customer_id": [source("orders", "customer_id", "filtered")],
        "revenue": [source("orders", "amount", "aggregated")],
        "top": [source("orders", "amount", "aggregated")],
    }


def test_column_lineage_sql_rename_and_star_expanded_from_staged_schemas(box):
    doc = sql(box, "SELECT * EXCLUDE (status), status AS state, amount * 100 FROM orders")
    assert doc["status"] == "known"
    assert doc["columns"] == {
        "order_id": [source("orders", "order_id")],
        "customer_id": [source("orders", "customer_id")],
        "amount": [source("orders", "amount")],
        "state": [source("orders", "status")],
        "(amount * 100)": [source("orders", "amount", "derived")],  # DuckDB's name, matched by position
    }


def test_column_lineage_sql_table_function_is_unknown_not_guessed(box):
    doc = sql(box, "SELECT o.order_id, r.range AS n FROM orders o, range(3) r")
    assert doc["status"] == "partial"
    assert doc["columns"] == {"order_id": [source("orders", "order_id")]}
    assert doc["unknown_columns"] == ["n"]
    assert "n" in doc["reason"]


def test_column_lineage_sql_columns_star_is_unknown(box):
    doc = sql(box, "SELECT COLUMNS('^(order_id|amount)$') FROM orders")
    assert doc["status"] == "unknown" and doc["columns"] == {}
    assert "projections" in doc["reason"]
