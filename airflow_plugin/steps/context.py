"""What a step implementation receives (StepRun) and what it reports (StepResult); no Airflow import here."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django_etl.dataplane import Adapter, adapter_for
from django_etl.dataplane.staging import DatasetInfo, Staging
from django_etl.errors import StepFailure, StepSkipped

__all__ = ["StepFailure", "StepResult", "StepRun"]


@dataclass
class StepResult:
    """The parts of the result manifest a step fills in as it goes (kept even when it fails)."""

    inputs: list[dict[str, Any]] = field(default_factory=list)
    outputs: list[dict[str, Any]] = field(default_factory=list)
    checks: list[dict[str, Any]] = field(default_factory=list)
    column_mapping: dict[str, list[str]] = field(default_factory=dict)
    # airflow_plugin.columnlineage's document: sources and transformation of each output column
    column_lineage: dict[str, Any] | None = None
    # where the step read from / wrote to outside staging, by OpenLineage naming (airflow_plugin.openlineage)
    locations: dict[str, Any] = field(default_factory=dict)
    relationship: str | None = None
    rows_in: int = 0
    rows_out: int = 0
    bytes: int = 0
    watermark: dict[str, Any] | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def add_output(self, info: DatasetInfo) -> None:
        self.outputs.append(info.as_manifest())
        self.rows_out += info.rows
        self.bytes += info.bytes

    def add_target(self, dataset: str, uri: str, rows: int, schema: list[dict[str, Any]]) -> None:
        """What a load wrote: a table or file outside the staging area."""
        self.outputs.append({"dataset": dataset, "uri": uri, "rows": rows, "schema": schema})
        self.rows_out = rows


@dataclass
class StepRun:
    """One try of one step: its parsed config, run identity, data interval, connectors and staging."""

    step: dict[str, Any]
    config: Any  # the step type's pydantic config model, parsed from the rendered (templated) config
    dag_id: str
    run_id: str
    task_id: str
    staging: Staging
    connectors: dict[str, dict[str, Any]] = field(default_factory=dict)
    data_interval_start: datetime | None = None
    data_interval_end: datetime | None = None
    logical_date: datetime | None = None
    pipeline: dict[str, Any] = field(default_factory=dict)
    result: StepResult = field(default_factory=StepResult)
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("airflow.task"))

    @property
    def name(self) -> str:
        return self.step.get("name") or self.task_id

    @property
    def inputs(self) -> list[str]:
        return list(self.step.get("inputs") or [])

    @property
    def output_name(self) -> str:
        return self.step.get("output") or getattr(self.config, "output", None) or self.task_id

    def adapter(self, connector_name: str) -> Adapter:
        runtime = self.connectors.get(connector_name)
        if runtime is None:
            raise StepFailure(f"connector {connector_name!r} was not resolved for this step")
        return adapter_for(runtime)

    def input(self, dataset: str) -> dict[str, Any]:
        """The staged dataset named ``dataset`` from an earlier task of this run; recorded as an input."""
        found = self.staging.find_dataset(self.dag_id, self.run_id, dataset)
        if found is None:
            raise StepFailure(
                f"input dataset {dataset!r} is not staged for run {self.run_id!r}: "
                "did the step producing it succeed in this run?"
            )
        if all(existing.get("dataset") != dataset for existing in self.result.inputs):
            self.result.inputs.append(found)
            self.result.rows_in += int(found.get("rows") or 0)
        if not found.get("rows") and not found.get("schema"):  # an empty extract that knew no columns
            raise StepSkipped(
                f"input dataset {dataset!r} has no rows and no known columns (declare the extract's 'schema' "
                "to run on empty extracts)"
            )
        return found

    def single_input(self, explicit: str | None) -> dict[str, Any]:
        name = explicit or (self.inputs[0] if len(self.inputs) == 1 else None)
        if name is None:
            raise StepFailure(f"name the input dataset: the step has {len(self.inputs)} upstream datasets")
        return self.input(name)

    def output_dir(self, dataset: str) -> str:
        return self.staging.dataset_dir(self.dag_id, self.run_id, self.task_id, dataset)
