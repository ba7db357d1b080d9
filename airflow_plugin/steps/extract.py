"""Extract: read from any connector in batches into one staged Parquet dataset, optionally incrementally.

Batches whose types differ widen the staged schema (``django_etl.dataplane.batches``). A declared ``schema``
casts its columns. An extract that finds no rows still stages its columns: the declared schema, the source's
own (a query's result columns, a CSV header) with the previous run's types filling what the source leaves
open, or the previous run's staged schema; with none of them the dataset has no columns, and the dataset
steps after it are skipped (docs/step-config.md, "Empty extracts").
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from airflow_plugin.steps.context import StepFailure, StepRun
from django_etl.dataplane.batches import cast_column, empty_batch
from django_etl.dataplane.typenames import arrow_schema, schema_from_fields

# The run's own settings, not what the source is asked for.
NOT_REQUESTED = {"retries", "retry_delay_seconds", "execution_timeout_seconds", "schema_"}


def run(step: StepRun) -> None:
    config = step.config
    adapter = step.adapter(config.connector)
    request = config.model_dump(exclude=NOT_REQUESTED)
    request["pagination"] = config.pagination.model_dump() if config.pagination else None
    declared = arrow_schema(config.schema_) if config.schema_ else None
    if declared is not None:
        request["column_types"] = {f.name: f.type for f in declared}  # files parse these columns as declared
    previous = None
    if config.watermark_column:
        previous = step.staging.read_watermark(step.dag_id, step.task_id)
        if previous is not None and previous.get("column") == config.watermark_column:
            step.log.info("extracting rows with %s > %r", config.watermark_column, previous["value"])
            if adapter.reads_incrementally:
                request["watermark"] = {"column": config.watermark_column, "value": previous["value"]}
        else:
            previous = None
    tracker = WatermarkTracker(config.watermark_column, previous)
    dataset = step.output_name
    batches = adapter.read(request, config.batch_size)
    if previous is not None and not adapter.reads_incrementally:
        batches = tracker.newer(batches)
    if declared is not None:
        batches = (with_declared(batch, declared) for batch in batches)
    empty = EmptyGuard(declared, lambda: step.staging.last_schema(step.dag_id, step.task_id, dataset))
    info = step.staging.write_dataset(
        step.output_dir(dataset), dataset, empty.watch(tracker.observe(batches))
    )
    step.result.rows_in = info.rows
    step.result.add_output(info)
    step.result.relationship = "direct"
    step.result.column_mapping = {f["name"]: [f["name"]] for f in info.schema}
    if info.widened:
        step.log.warning("column types widened while staging %r: %s", dataset, "; ".join(info.widened))
        step.result.details["widened"] = info.widened
    if empty.schema_from is not None:
        step.result.details["empty"] = {"schema_from": empty.schema_from}
        if info.schema:
            step.log.info("no rows: staged %r with its columns (%s)", dataset, empty.schema_from)
        else:
            step.log.warning(
                "no rows and no known columns for %r (no source columns, no earlier run, no declared "
                "'schema'): the dataset steps that read it are skipped",
                dataset,
            )
    if config.watermark_column:
        step.result.watermark = {"column": config.watermark_column, "value": tracker.high_water()}


def with_declared(batch: pa.RecordBatch, declared: pa.Schema) -> pa.RecordBatch:
    """The declared columns first, cast to their types (absent ones NULL), then the others as they came."""
    arrays, fields = [], []
    for field in declared:
        if field.name in batch.schema.names:
            arrays.append(
                cast_column(batch.column(field.name), field.type, f"declared column {field.name!r}")
            )
        else:
            arrays.append(pa.nulls(batch.num_rows, type=field.type))
        fields.append(field)
    for field in batch.schema:
        if field.name not in declared.names:
            arrays.append(batch.column(field.name))
            fields.append(field)
    return pa.RecordBatch.from_arrays(arrays, schema=pa.schema(fields))


class EmptyGuard:
    """Passes batches with rows through; when none had any, ends the stream with the best known schema.

    ``schema_from`` says where that schema came from ('declared', 'source', 'source and previous run',
    'previous run', 'unknown'), and stays None when rows arrived.
    """

    def __init__(self, declared: pa.Schema | None, previous) -> None:
        self.declared = declared
        self.previous = previous  # called only for an empty extract: it reads earlier runs' manifests
        self.schema_from: str | None = None

    def watch(self, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        source: pa.Schema | None = None
        rows = 0
        for batch in batches:
            if batch.num_rows:
                rows += batch.num_rows
                yield batch
            elif source is None:
                source = batch.schema  # what the source says its columns are
        if not rows:
            yield empty_batch(self.resolve(source))

    def resolve(self, source: pa.Schema | None) -> pa.Schema:
        fields = self.previous()
        previous = schema_from_fields(fields) if fields else None
        if source is not None and len(source):
            known = {f.name: f.type for f in previous} if previous is not None else {}
            filled = [
                pa.field(f.name, known[f.name]) if pa.types.is_null(f.type) and f.name in known else f
                for f in source
            ]
            origin = "source and previous run" if filled != list(source) else "source"
            base = pa.schema(filled)
        elif previous is not None:
            base, origin = previous, "previous run"
        else:
            base, origin = pa.schema([]), "unknown"
        if self.declared is not None:
            rest = [f for f in base if f.name not in self.declared.names]
            base, origin = pa.schema([*self.declared, *rest]), "declared"
        self.schema_from = origin
        return base


class WatermarkTracker:
    """Follows the largest value of the watermark column; filters rows not newer than the previous one."""

    def __init__(self, column: str | None, previous: dict[str, Any] | None) -> None:
        self.column = column
        self.previous = previous["value"] if previous else None
        self.maximum: Any = None

    def observe(self, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            if self.column and batch.num_rows:
                if self.column not in batch.schema.names:
                    raise StepFailure(f"watermark column {self.column!r} is not in the extracted columns")
                value = pc.max(batch.column(self.column)).as_py()
                try:
                    if value is not None and (self.maximum is None or value > self.maximum):
                        self.maximum = value
                except TypeError:  # the column widened across batches (say int64 to string)
                    raise StepFailure(
                        f"watermark column {self.column!r} holds values of different kinds in one run "
                        f"({self.maximum!r} and {value!r}); declare its type in 'schema'"
                    ) from None
            yield batch

    def newer(self, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            if not batch.num_rows:
                yield batch  # an empty batch only tells the columns
                continue
            if self.column not in batch.schema.names:
                raise StepFailure(f"watermark column {self.column!r} is not in the extracted columns")
            column = batch.column(self.column)
            threshold = pa.scalar(parse_mark(self.previous, column.type), type=column.type)
            yield batch.filter(pc.fill_null(pc.greater(column, threshold), False))

    def high_water(self) -> Any:
        """The new mark (JSON-able); the previous one when nothing newer arrived."""
        if self.maximum is None:
            return self.previous
        return self.maximum.isoformat() if hasattr(self.maximum, "isoformat") else self.maximum


def parse_mark(value: Any, kind: pa.DataType) -> Any:
    if isinstance(value, str) and (pa.types.is_timestamp(kind) or pa.types.is_date(kind)):
        parsed = datetime.fromisoformat(value)
        return parsed.date() if pa.types.is_date(kind) else parsed
    return value
