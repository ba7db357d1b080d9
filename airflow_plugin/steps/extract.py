"""Extract: read from any connector in batches into one staged Parquet dataset, optionally incrementally."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from airflow_plugin.steps.context import StepFailure, StepRun


def run(step: StepRun) -> None:
    config = step.config
    adapter = step.adapter(config.connector)
    request = config.model_dump(exclude={"retries", "retry_delay_seconds", "execution_timeout_seconds"})
    request["pagination"] = config.pagination.model_dump() if config.pagination else None
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
    batches = adapter.read(request, config.batch_size)
    if previous is not None and not adapter.reads_incrementally:
        batches = tracker.newer(batches)
    dataset = step.output_name
    info = step.staging.write_dataset(step.output_dir(dataset), dataset, tracker.observe(batches))
    step.result.rows_in = info.rows
    step.result.add_output(info)
    step.result.relationship = "direct"
    step.result.column_mapping = {f["name"]: [f["name"]] for f in info.schema}
    if config.watermark_column:
        step.result.watermark = {"column": config.watermark_column, "value": tracker.high_water()}


class WatermarkTracker:
    """Follows the largest value of the watermark column; filters rows not newer than the previous one."""

    def __init__(self, column: str | None, previous: dict[str, Any] | None) -> None:
        self.column = column
        self.previous = previous["value"] if previous else None
        self.maximum: Any = None

    def observe(self, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            if self.column:
                if self.column not in batch.schema.names:
                    raise StepFailure(f"watermark column {self.column!r} is not in the extracted columns")
                value = pc.max(batch.column(self.column)).as_py()
                if value is not None and (self.maximum is None or value > self.maximum):
                    self.maximum = value
            yield batch

    def newer(self, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
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
