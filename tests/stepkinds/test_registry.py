"""The step-kind registry: one entry per kind, and everything that follows from an entry."""

from __future__ import annotations

import pytest

from django_etl.errors import ConfigurationError
from django_etl.stepkinds import (
    STEP_KINDS,
    DatasetRole,
    Relationship,
    load_implementation,
    relationship_for,
    step_kind,
)


def test_every_kind_has_a_loadable_schema_and_implementation():
    for kind in STEP_KINDS.values():
        assert kind.schema.__name__.lower().startswith(kind.name)
        assert callable(load_implementation(kind))


def test_step_type_choices_follow_the_registry():
    from django_etl.pipelines.choices import StepType

    assert [value for value, _ in StepType.choices] == list(STEP_KINDS)


def test_operators_follow_the_registry():
    from airflow_plugin.operators import OPERATORS

    assert {name: cls.step_type for name, cls in OPERATORS.items()} == {name: name for name in STEP_KINDS}
    assert OPERATORS["load"].__name__ == "LoadOperator"


def test_relationship_types_follow_the_registry():
    from django_etl.lineage.choices import RelationshipType

    assert [value for value, _ in RelationshipType.choices] == [r.value for r in Relationship]


def test_step_kind_unknown_names_the_known_kinds():
    with pytest.raises(
        ConfigurationError, match="unknown step type 'sample'; expected one of extract, transform"
    ):
        step_kind("sample")


@pytest.mark.parametrize(
    ("step_type", "config", "expected"),
    [
        ("extract", {}, Relationship.DIRECT),
        ("load", {}, Relationship.DIRECT),
        ("validate", {}, Relationship.DIRECT),
        ("transform", {"sql": "select 1"}, Relationship.DERIVED),
        ("transform", {"operations": [{"op": "filter"}, {"op": "select"}]}, Relationship.FILTERED),
        ("transform", {"operations": [{"op": "filter"}, {"op": "aggregate"}]}, Relationship.AGGREGATED),
        ("transform", {"operations": [{"op": "derive"}]}, Relationship.DERIVED),
        ("notify", {}, Relationship.DERIVED),
        ("unknown", None, Relationship.DERIVED),
    ],
)
def test_relationship_for(step_type, config, expected):
    assert relationship_for(step_type, config) == expected


def test_connector_names_in_key_order():
    assert step_kind("notify").connector_names({"webhook_connector": "hook", "email": []}) == ["hook"]
    assert step_kind("transform").connector_names({"connector": "ignored"}) == []


def test_dataset_roles_cover_every_kind():
    assert {kind.dataset_role for kind in STEP_KINDS.values()} <= set(DatasetRole)
