"""Relationship types of lineage edges: the registry's rule from the step's type and config, or the manifest's."""

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
