"""Arrow batches of one dataset: rows grouped into batches, later batches held to the first one's schema."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pyarrow as pa

from django_etl.errors import SchemaDriftError


def batches_of_rows(
    rows: Iterator[dict[str, Any]], batch_size: int, schema: pa.Schema | None = None
) -> Iterator[pa.RecordBatch]:
    """Group row dicts into record batches; the first batch's inferred schema holds for the rest."""
    chunk: list[dict[str, Any]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= batch_size:
            batch = _to_batch(chunk, schema)
            schema = batch.schema
            yield batch
            chunk = []
    if chunk:
        yield _to_batch(chunk, schema)


def _to_batch(chunk: list[dict[str, Any]], schema: pa.Schema | None) -> pa.RecordBatch:
    if schema is None:
        return pa.RecordBatch.from_pylist(chunk)
    inferred = pa.RecordBatch.from_pylist(chunk)
    extra = set(inferred.schema.names) - set(schema.names)
    if extra:
        raise SchemaDriftError(f"new columns appeared after the first batch: {sorted(extra)}")
    try:
        return pa.RecordBatch.from_pylist(chunk, schema=schema)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise SchemaDriftError(f"values no longer fit the first batch's column types: {exc}") from None


def conform_to(batch: pa.RecordBatch, schema: pa.Schema, label: str = "data") -> pa.RecordBatch:
    """``batch`` cast to ``schema`` (columns matched by name); SchemaDriftError naming ``label`` otherwise."""
    if batch.schema == schema:
        return batch
    names, expected = set(batch.schema.names), set(schema.names)
    if names != expected:
        added, missing = sorted(names - expected), sorted(expected - names)
        raise SchemaDriftError(
            f"schema drift in {label}: new columns {added or 'none'}, missing columns {missing or 'none'}"
        )
    try:
        return batch.select(schema.names).cast(schema)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        changed = [
            f"{f.name} {schema.field(f.name).type} -> {f.type}"
            for f in batch.schema
            if f.type != schema.field(f.name).type
        ]
        raise SchemaDriftError(
            f"schema drift in {label}: column types changed ({'; '.join(changed)})"
        ) from None
