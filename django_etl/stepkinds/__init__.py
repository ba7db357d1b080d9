"""The step-kind registry: one entry per kind of step, read by Django (validation, choices) and Airflow alike.

Each entry says everything the platform needs about a kind of step: its config model, which of its keys name
connectors and of which types, what it does with datasets, how its rows relate to its inputs in lineage, and
where its implementation lives (a dotted path, imported only in the task process). Neither Django nor
Airflow is imported here, and the config models (pydantic) load on first use: the operators module imports
this registry at every DAG-file parse, where only names and colours are needed. Adding a kind: one implementation module under ``airflow_plugin/steps/``, one entry
below, ``makemigrations`` for the ``StepType`` choices (docs/architecture.md has the recipe).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from django_etl.errors import ConfigurationError


class DatasetRole(StrEnum):
    """What a step does with the staged datasets of its run (``pipelines/validation/datasets.py``)."""

    PRODUCE = "produce"  # reads none, writes one (extract)
    COMBINE = "combine"  # reads one or more, writes one (transform)
    CONSUME = "consume"  # reads exactly one, writes none (load)
    PASS_THROUGH = "pass_through"  # reads exactly one, hands it on under the same name (validate)
    NONE = "none"  # reads and writes none (notify summarizes the run)


class Relationship(StrEnum):
    """DataLineage.relationship_type values, as the seed names them (``lineage.RelationshipType``)."""

    DIRECT = "direct"
    DERIVED = "derived"
    AGGREGATED = "aggregated"
    FILTERED = "filtered"


@dataclass(frozen=True)
class StepKind:
    """One kind of pipeline step (``PipelineStep.step_type``)."""

    name: str
    label: str
    schema_path: str  # "module:Class" of its config model (a StepOptions), imported on first use
    implementation: str  # "module:function" taking a StepRun, imported in the task process only
    dataset_role: DatasetRole
    relationship: Relationship  # DataLineage.relationship_type of its edges unless refined below
    # config key -> connector types it accepts ("connector" of an extract may be any type...)
    connector_keys: dict[str, frozenset[str]] = field(default_factory=dict)
    # refines ``relationship`` from the config (a transform's operations say filter or aggregate)
    refine_relationship: Callable[[dict[str, Any]], Relationship] | None = None
    ui_color: str = "#e8f0fe"  # the task's colour in Airflow's graph view

    @property
    def schema(self) -> type[Any]:
        """The kind's pydantic config model (``stepkinds.schemas``)."""
        return _import(self.schema_path)

    def relationship_for(self, config: dict[str, Any] | None) -> Relationship:
        if self.refine_relationship is None:
            return self.relationship
        return self.refine_relationship(config if isinstance(config, dict) else {})

    def connector_names(self, config: Any) -> list[str]:
        """The connector names a parsed (or raw) config of this kind refers to, in key order."""
        names = []
        for key in self.connector_keys:
            value = config.get(key) if isinstance(config, dict) else getattr(config, key, None)
            if value:
                names.append(value)
        return names


# Operations that keep each row as it is (or drop it): a chain of them is a filter, not a derivation.
_ROW_PRESERVING = frozenset({"filter", "select", "deduplicate"})


def _transform_relationship(config: dict[str, Any]) -> Relationship:
    """An aggregate → aggregated; only filters (with selects/dedups) → filtered; free SQL → derived."""
    operations = [op.get("op") for op in config.get("operations") or [] if isinstance(op, dict)]
    if "aggregate" in operations:
        return Relationship.AGGREGATED
    if "filter" in operations and set(operations) <= _ROW_PRESERVING:
        return Relationship.FILTERED
    return Relationship.DERIVED


ALL_CONNECTOR_TYPES = frozenset({"database", "api", "file", "cloud"})

STEP_KINDS: dict[str, StepKind] = {
    kind.name: kind
    for kind in (
        StepKind(
            name="extract",
            label="Extract",
            schema_path="django_etl.stepkinds.schemas:ExtractConfig",
            implementation="airflow_plugin.steps.extract:run",
            dataset_role=DatasetRole.PRODUCE,
            relationship=Relationship.DIRECT,
            connector_keys={"connector": ALL_CONNECTOR_TYPES},
            ui_color="#e3f2fd",
        ),
        StepKind(
            name="transform",
            label="Transform",
            schema_path="django_etl.stepkinds.schemas:TransformConfig",
            implementation="airflow_plugin.steps.transform:run",
            dataset_role=DatasetRole.COMBINE,
            relationship=Relationship.DERIVED,
            refine_relationship=_transform_relationship,
            ui_color="#f3e5f5",
        ),
        StepKind(
            name="load",
            label="Load",
            schema_path="django_etl.stepkinds.schemas:LoadConfig",
            implementation="airflow_plugin.steps.load:run",
            dataset_role=DatasetRole.CONSUME,
            relationship=Relationship.DIRECT,
            connector_keys={"connector": frozenset({"database", "file", "cloud"})},
            ui_color="#e8f5e9",
        ),
        StepKind(
            name="validate",
            label="Validate",
            schema_path="django_etl.stepkinds.schemas:ValidateConfig",
            implementation="airflow_plugin.steps.validate:run",
            dataset_role=DatasetRole.PASS_THROUGH,
            relationship=Relationship.DIRECT,
            ui_color="#fff8e1",
        ),
        StepKind(
            name="notify",
            label="Notify",
            schema_path="django_etl.stepkinds.schemas:NotifyConfig",
            implementation="airflow_plugin.steps.notify:run",
            dataset_role=DatasetRole.NONE,
            relationship=Relationship.DERIVED,
            connector_keys={"webhook_connector": frozenset({"api"})},
            ui_color="#fce4ec",
        ),
    )
}


def step_kind(name: str | None) -> StepKind:
    """The registry entry of ``name``; ConfigurationError naming the known kinds otherwise."""
    kind = STEP_KINDS.get(name or "")
    if kind is None:
        raise ConfigurationError(f"unknown step type {name!r}; expected one of {', '.join(STEP_KINDS)}")
    return kind


def relationship_for(step_type: str | None, config: dict[str, Any] | None) -> Relationship:
    """The lineage relationship of a step's edges from its kind and config (derived for unknown kinds)."""
    kind = STEP_KINDS.get(step_type or "")
    return Relationship.DERIVED if kind is None else kind.relationship_for(config)


def load_implementation(kind: StepKind) -> Callable[[Any], None]:
    """Import a kind's implementation (in the task process: it pulls DuckDB, pyarrow, drivers)."""
    return _import(kind.implementation)


def _import(dotted: str) -> Any:
    from importlib import import_module

    module_name, _, attribute = dotted.partition(":")
    return getattr(import_module(module_name), attribute)
