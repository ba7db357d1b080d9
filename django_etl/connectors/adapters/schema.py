"""Keeping one schema across the batches of a dataset: cast later batches, or say precisely what drifted."""

from __future__ import annotations

import pyarrow as pa

from django_etl.connectors.adapters.base import SchemaDriftError


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
