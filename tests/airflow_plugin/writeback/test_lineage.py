"""Lineage edges: relationship types (the registry's rule or the manifest's), hand-overs, edge metadata, never-run tasks."""

from __future__ import annotations

import pytest

from airflow_plugin.writeback.lineage import relationship_from_manifest
from django_etl.stepkinds import relationship_for


@pytest.mark.parametrize(
    ("step_type", "config", "expected"),
    [
        ("load", {}, "direct"),
        ("validate", {"checks": []}, "direct"),
        ("transform", {"operations": [{"op": "filter", "condition": "x > 0"}]}, "filtered"),
        ("transform", {"operations": [{"op": "filter"}, {"op": "select", "columns": ["a"]}]}, "filtered"),
        ("transform", {"operations": [{"op": "filter"}, {"op": "aggregate"}]}, "aggregated"),
        ("transform", {"operations": [{"op": "filter"}, {"op": "derive"}]}, "derived"),
        ("transform", {"sql": "select * from orders"}, "derived"),
        ("notify", {}, "derived"),
    ],
)
def test_relationship_for_step_semantics(step_type, config, expected):
    assert relationship_for(step_type, config) == expected


def test_relationship_from_manifest_wins_when_valid():
    assert relationship_from_manifest({"relationship": "aggregated"}, "derived") == "aggregated"
    assert relationship_from_manifest({"relationship": None}, "derived") == "derived"
    assert relationship_from_manifest({"relationship": "joined"}, "derived") == "derived"


# ---------------------------------------------------------------- hand-overs (no database)
def _step(output=None, inputs=(), upstream=()):
    return {"output": output, "inputs": list(inputs), "upstream": list(upstream)}


def _manifest(step_type, inputs=(), outputs=(), status="success"):
    return {"step_type": step_type, "status": status, "inputs": list(inputs), "outputs": list(outputs)}


ENRICHED = {"dataset": "orders_enriched", "uri": "/staging/run/enrich/data/orders_enriched", "rows": 5}


def _pairs(steps, manifests, readers=None, finished=None):
    from airflow_plugin.writeback.lineage import hand_overs

    readers = set(steps) if readers is None else readers
    return {(h.source, h.target) for h in hand_overs(steps, manifests, readers, finished)}


def test_hand_overs_validate_sits_between_producer_and_reader():
    steps = {
        "enrich": _step("orders_enriched"),
        "check": _step("orders_enriched", ["orders_enriched"], ["enrich"]),
        "load": _step(None, ["orders_enriched"], ["check"]),
    }
    manifests = {
        "enrich": _manifest("transform", outputs=[ENRICHED]),
        # the validate step re-publishes the same version (same name, same uri)
        "check": _manifest("validate", inputs=[ENRICHED], outputs=[ENRICHED]),
        "load": _manifest("load", inputs=[ENRICHED], outputs=[{"dataset": "fact", "uri": "sqlite://x"}]),
    }
    assert _pairs(steps, manifests) == {("enrich", "check"), ("check", "load")}


def test_hand_overs_reader_beside_the_validate_step_reads_the_producer():
    steps = {
        "enrich": _step("orders_enriched"),
        "check": _step("orders_enriched", ["orders_enriched"], ["enrich"]),
        "report": _step("report", ["orders_enriched"], ["enrich"]),  # parallel with the check
    }
    manifests = {
        "enrich": _manifest("transform", outputs=[ENRICHED]),
        "check": _manifest("validate", inputs=[ENRICHED], outputs=[ENRICHED]),
        "report": _manifest("transform", inputs=[ENRICHED]),
    }
    assert _pairs(steps, manifests) == {("enrich", "check"), ("enrich", "report")}


def test_hand_overs_different_uri_is_another_version():
    steps = {"a": _step("x"), "b": _step("x"), "reader": _step(None, ["x"], ["a", "b"])}
    manifests = {
        "a": _manifest("extract", outputs=[{"dataset": "x", "uri": "/s/a/x"}]),
        "b": _manifest("extract", outputs=[{"dataset": "x", "uri": "/s/b/x"}]),
        "reader": _manifest("load", inputs=[{"dataset": "x", "uri": "/s/b/x"}]),
    }
    assert _pairs(steps, manifests) == {("b", "reader")}


def test_hand_overs_failed_producer_and_never_run_reader_hand_nothing():
    steps = {"check": _step("x", ["x"]), "load": _step(None, ["x"], ["check"]), "x": _step("x")}
    manifests = {"check": _manifest("validate", outputs=[{"dataset": "x"}], status="failed")}
    assert _pairs(steps, manifests, readers={"load"}, finished={"x"}) == set()
    assert _pairs(steps, manifests, readers=set(), finished={"x", "check"}) == set()


def test_hand_overs_without_manifests_follow_the_spec():
    steps = {
        "extract": _step("orders"),
        "check": _step("orders", ["orders"], ["extract"]),
        "load": _step(None, ["orders"], ["check"]),
    }
    assert _pairs(steps, {}) == {("extract", "check"), ("check", "load")}


def test_edge_metadata_keeps_the_columns_of_its_datasets():
    from airflow_plugin.writeback.lineage import HandOver, edge_metadata

    manifest = {
        "step_type": "transform",
        "column_lineage": {
            "status": "known",
            "reason": None,
            "columns": {
                "order_id": [{"dataset": "orders", "column": "id", "transformation": "direct"}],
                "name": [{"dataset": "customers", "column": "name", "transformation": "direct"}],
            },
        },
    }
    metadata = edge_metadata(
        HandOver("extract_customers", "join", [{"dataset": "customers", "rows": 3}]), manifest, None
    )
    assert metadata["columns"] == {
        "name": [{"dataset": "customers", "column": "name", "transformation": "direct"}]
    }
    assert metadata["column_lineage"] == "known" and metadata["rows"] == 3


def test_edge_metadata_says_when_columns_are_unknown():
    from airflow_plugin.writeback.lineage import HandOver, edge_metadata

    metadata = edge_metadata(HandOver("a", "b", [{"dataset": "x"}]), {"step_type": "transform"}, None)
    assert metadata["column_lineage"] == "unknown" and metadata["columns"] == {}
    assert "no column_lineage" in metadata["reason"]


@pytest.mark.parametrize(
    ("state", "try_number", "ran"),
    [("upstream_failed", 0, False), ("skipped", 0, False), ("skipped", 1, True), ("success", 1, True)],
)
def test_ran_never_run_tasks_have_no_start(state, try_number, ran):
    from datetime import UTC, datetime

    from airflow_plugin.writeback.events import TaskInfo
    from airflow_plugin.writeback.tasks import ran as task_ran
    from airflow_plugin.writeback.tasks import task_status

    task = TaskInfo(task_id="t", state=state, try_number=try_number, start_date=datetime.now(UTC))
    assert task_ran(task, task_status(task)) is ran
