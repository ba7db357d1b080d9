"""One staged dataset written as Parquet parts while its schema widens; earlier parts are re-cast at the end.

Batches arrive with the types their source inferred for them (a CSV piece, an API page). While they agree,
they go into one part file, one row group per batch. When a batch needs a wider schema (``widen_schema``),
the open part is closed and a new one begins with the joined schema; once the stream ends, every part written
before the last widening is rewritten, row group by row group, in the final schema. Memory stays one batch
deep whatever the dataset's size, the common case (no widening) writes each row once, and readers see one
schema across all parts. Buffering the first rows to infer would not see a change that comes later, and
leaving parts in their own schemas would push the unification onto every reader.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from django_etl.dataplane.batches import conform_to, widen_schema, widened_columns

RECAST_BATCH_ROWS = 65_536


@dataclass(frozen=True)
class PartsWritten:
    rows: int
    bytes: int
    schema: pa.Schema
    widened: list[str] = field(default_factory=list)  # 'column int64 -> double' as the schema widened


def _writer(fs: pafs.FileSystem, path: str, schema: pa.Schema) -> pq.ParquetWriter:
    return pq.ParquetWriter(path, schema, filesystem=fs, compression="lz4", use_dictionary=False)


def part_path(directory: str, index: int) -> str:
    return f"{directory}/part-{index:05d}.parquet"


def write_parts(
    fs: pafs.FileSystem,
    directory: str,
    batches: Iterable[pa.RecordBatch],
    schema: pa.Schema | None = None,
    label: str = "dataset",
) -> PartsWritten:
    """Write ``batches`` under ``directory``; ``schema`` is the dataset's schema when no batch arrives at all."""
    parts: list[tuple[str, pa.Schema]] = []
    current: pa.Schema | None = None
    writer: pq.ParquetWriter | None = None
    widened: list[str] = []
    rows = 0
    try:
        for batch in batches:
            if current is None:
                current = batch.schema
            elif batch.schema != current:
                joined = widen_schema(current, batch.schema)
                if joined != current:
                    widened.extend(widened_columns(current, joined))
                    if writer is not None:
                        writer.close()
                        writer = None
                    current = joined
                batch = conform_to(batch, current, label)
            if not batch.num_rows:
                continue  # an empty batch only tells the schema
            if writer is None:
                path = part_path(directory, len(parts))
                writer = _writer(fs, path, current)
                parts.append((path, current))
            writer.write_batch(batch)
            rows += batch.num_rows
    finally:
        if writer is not None:
            writer.close()
    final = current if current is not None else (schema if schema is not None else pa.schema([]))
    if not parts:  # no rows: one empty part still carries the schema
        path = part_path(directory, 0)
        _writer(fs, path, final).close()
        parts.append((path, final))
    for path, part_schema in parts:
        if part_schema != final:
            recast(fs, path, final, label)
    size = sum(fs.get_file_info(path).size or 0 for path, _ in parts)
    return PartsWritten(rows, size, final, widened)


def recast(fs: pafs.FileSystem, path: str, schema: pa.Schema, label: str) -> None:
    """Rewrite one part in ``schema`` through a temporary file, then move it over the part."""
    temporary = f"{path}.widening"
    with fs.open_input_file(path) as handle:
        source = pq.ParquetFile(handle, pre_buffer=False)
        writer = _writer(fs, temporary, schema)
        try:
            for batch in source.iter_batches(batch_size=RECAST_BATCH_ROWS):
                writer.write_batch(conform_to(batch, schema, label))
        finally:
            writer.close()
    fs.delete_file(path)
    fs.move(temporary, path)
