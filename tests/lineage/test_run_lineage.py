"""Lineage of real runs: edges equal the hand-overs of staged datasets, column lineage rides on them."""

from __future__ import annotations

import pytest

from tests.lineage.conftest import RECORDER_DATABASES, edge, edges_of

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True, databases=RECORDER_DATABASES)]

DIAMOND = [
    ("Extract orders", "extract", {"connector": "landing", "path": "orders.csv", "output": "orders"}, []),
    ("Check orders", "validate", {"checks": [{"check": "row_count", "min": 1}]}, ["Extract orders"]),
    (
        "Paid",
        "transform",
        {
            "inputs": ["orders"],
            "output": "paid",
            "operations": [{"op": "filter", "condition": "status = 'paid'"}],
        },
        ["Check orders"],
    ),
    (
        "Big",
        "transform",
        {
            "inputs": ["orders"],
            "output": "big",
            "operations": [
                {"op": "rename", "columns": {"amount": "big_amount"}},
                {"op": "select", "columns": ["order_id", "big_amount"]},
            ],
        },
        ["Extract orders"],  # beside the check: it reads the extract's version, not the checked one
    ),
    (
        "Combine",
        "transform",
        {
            "inputs": ["paid", "big"],
            "output": "combined",
            "sql": "SELECT p.order_id, p.customer_id, b.big_amount FROM paid p JOIN big b USING (order_id)",
        },
        ["Paid", "Big"],
    ),
    ("Check combined", "validate", {"checks": [{"check": "not_null", "columns": ["order_id"]}]}, ["Combine"]),
    (
        "Load",
        "load",
        {"connector": "warehouse", "table": "fact_orders", "mode": "upsert", "key": ["order_id"]},
        ["Check combined"],
    ),
]


def test_lineage_demo_edges_equal_hand_overs():
    from django_etl.core.demo import load_demo
    from django_etl.runs.demo_run import run_pipeline

    load_demo()
    run = run_pipeline("Daily orders", out=lambda line: None)
    assert run.status == "success"
    assert edges_of(run) == {
        ("Extract orders", "Enrich orders", "derived"),
        ("Extract customers", "Enrich orders", "derived"),
        ("Enrich orders", "Check orders", "direct"),
        ("Check orders", "Load warehouse", "direct"),
    }
    enrich = edge(run, "Extract customers", "Enrich orders").metadata
    assert enrich["datasets"] == ["customers"]
    assert enrich["column_lineage"] == "known"
    assert enrich["columns"] == {
        "customer_name": [{"dataset": "customers", "column": "name", "transformation": "direct"}],
        "country": [{"dataset": "customers", "column": "country", "transformation": "direct"}],
    }
    load = edge(run, "Check orders", "Load warehouse").metadata
    assert load["datasets"] == ["orders_enriched"]
    assert load["columns"]["amount"] == [
        {"dataset": "orders_enriched", "column": "amount", "transformation": "direct"}
    ]
    assert load["output"].endswith("/fact_orders")


def test_lineage_diamond_edges_equal_hand_overs(sources, make_pipeline, run_pipeline):
    run = run_pipeline(make_pipeline("Diamond orders", DIAMOND))
    assert run.status == "success", [(t.pipeline_step.name, t.status) for t in run.task_runs.all()]
    assert edges_of(run) == {
        ("Extract orders", "Check orders", "direct"),
        ("Check orders", "Paid", "filtered"),
        ("Extract orders", "Big", "direct"),
        ("Paid", "Combine", "derived"),
        ("Big", "Combine", "derived"),
        ("Combine", "Check combined", "direct"),
        ("Check combined", "Load", "direct"),
    }
    paid = edge(run, "Check orders", "Paid").metadata
    assert paid["columns"]["amount"] == [
        {"dataset": "orders", "column": "amount", "transformation": "filtered"}
    ]
    big = edge(run, "Extract orders", "Big").metadata
    assert big["columns"] == {
        "order_id": [{"dataset": "orders", "column": "order_id", "transformation": "direct"}],
        "big_amount": [{"dataset": "orders", "column": "amount", "transformation": "direct"}],
    }
    # The join's edges each carry the columns that came through them.
    assert edge(run, "Big", "Combine").metadata["columns"] == {
        "big_amount": [{"dataset": "big", "column": "big_amount", "transformation": "direct"}],
    }
    assert edge(run, "Paid", "Combine").metadata["columns"] == {
        "order_id": [{"dataset": "paid", "column": "order_id", "transformation": "direct"}],
        "customer_id": [{"dataset": "paid", "column": "customer_id", "transformation": "direct"}],
    }


def test_lineage_never_run_tasks_have_no_start_and_no_edges(sources, make_pipeline, run_pipeline):
    steps = [
        DIAMOND[0],
        (
            "Broken",
            "transform",
            {"inputs": ["orders"], "output": "broken", "sql": "SELECT nope FROM orders"},
            [],
        ),
        ("Check broken", "validate", {"checks": [{"check": "row_count", "min": 1}]}, ["Broken"]),
        ("Load broken", "load", {"connector": "warehouse", "table": "broken"}, ["Check broken"]),
    ]
    run = run_pipeline(make_pipeline("Broken orders", steps))
    tasks = {t.pipeline_step.name: t for t in run.task_runs.all()}
    assert run.status == "failed"
    assert {name: t.status for name, t in tasks.items()} == {
        "Extract orders": "success",
        "Broken": "failed",
        "Check broken": "upstream_failed",
        "Load broken": "upstream_failed",
    }
    assert tasks["Broken"].started_at is not None
    assert tasks["Check broken"].started_at is None and tasks["Load broken"].started_at is None
    assert tasks["Check broken"].duration is None
    # The failed transform read its input before failing; the never-run tasks read nothing.
    assert edges_of(run) == {("Extract orders", "Broken", "derived")}
