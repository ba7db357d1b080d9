"""Reading and writing CSV, JSON lines and Parquet as streams of Arrow batches (shared by file and cloud)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any, BinaryIO, get_args

import pyarrow as pa

from django_etl.configmodel import FileFormat
from django_etl.dataplane.batches import conform_to

FORMATS: tuple[str, ...] = get_args(FileFormat)
# Bytes per CSV/JSON block: big enough for the multi-threaded parser, small enough to keep memory flat.
BLOCK_SIZE = 8 << 20
CSV_PIECE = 32 << 20


def read_stream(
    source: str | BinaryIO, fmt: str, *, batch_size: int, delimiter: str = ",", label: str = ""
) -> Iterator[pa.RecordBatch]:
    """Batches of one file; malformed content raises ValueError naming ``label`` (the file)."""
    try:
        if fmt == "csv":
            yield from read_csv(source, batch_size=batch_size, delimiter=delimiter)
        elif fmt == "jsonl":
            import pyarrow.json as pajson

            reader = pajson.open_json(source, read_options=pajson.ReadOptions(block_size=BLOCK_SIZE))
            yield from _rechunk(reader, batch_size)
        elif fmt == "parquet":
            import pyarrow.parquet as pq

            yield from pq.ParquetFile(source).iter_batches(batch_size=batch_size)
        else:
            raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise ValueError(f"{label or 'file'} is not valid {fmt}: {exc}") from None


def read_sources(
    sources: Iterable[tuple[str | BinaryIO, str]], fmt: str, *, batch_size: int, delimiter: str = ","
) -> Iterator[pa.RecordBatch]:
    """Batches of several (source, label) files read as one dataset, each held to the first file's schema.

    Sources are consumed one at a time, so a source may be a temporary file that lives only until the next
    one is asked for. Malformed content raises ValueError, a schema change SchemaDriftError, naming the label.
    """
    schema = None
    for source, label in sources:
        for batch in read_stream(source, fmt, batch_size=batch_size, delimiter=delimiter, label=label):
            schema = schema or batch.schema
            yield conform_to(batch, schema, label)


def head(batches: Iterable[pa.RecordBatch], limit: int) -> pa.Table:
    """The first ``limit`` rows of a stream of batches (a connector's preview)."""
    first = next(iter(batches), None)
    return pa.Table.from_batches([first]).slice(0, limit) if first is not None else pa.table({})


def read_csv(source: str | BinaryIO, *, batch_size: int, delimiter: str = ",") -> Iterator[pa.RecordBatch]:
    """CSV in pieces of about CSV_PIECE bytes cut at line ends, each parsed by Arrow's multi-threaded reader.

    Arrow's streaming CSV reader reads ahead without bound (memory grows with the file); pieces keep memory
    flat. Lines are never split: values may not contain newlines (Arrow's default). Later pieces keep the
    column names and types of the first, so a value that no longer fits is reported as a conversion error.
    """
    import pyarrow.csv as pacsv

    parse = pacsv.ParseOptions(delimiter=delimiter)
    # As PostgreSQL's COPY reads CSV: an unquoted empty field is NULL, a quoted "" is an empty string.
    convert: dict[str, Any] = {"strings_can_be_null": True, "quoted_strings_can_be_null": False}
    handle = open(source, "rb") if isinstance(source, str) else source  # noqa: SIM115 - closed below when ours
    try:
        names: list[str] | None = None
        while True:
            piece = handle.read(CSV_PIECE)
            if not piece:
                return
            piece += handle.readline()  # finish the last line
            table = pacsv.read_csv(
                pa.py_buffer(piece),
                read_options=pacsv.ReadOptions(column_names=names, block_size=BLOCK_SIZE),
                parse_options=parse,
                convert_options=pacsv.ConvertOptions(**convert),
            )
            if names is None:
                names = table.column_names
                convert["column_types"] = table.schema
            yield from table.to_batches(max_chunksize=batch_size)
    finally:
        if isinstance(source, str):
            handle.close()


def _rechunk(reader: Iterable[pa.RecordBatch], batch_size: int) -> Iterator[pa.RecordBatch]:
    for batch in reader:
        for offset in range(0, batch.num_rows, batch_size):
            yield batch.slice(offset, batch_size)


def write_stream(sink: BinaryIO | str, batches: Iterable[pa.RecordBatch], fmt: str, schema: pa.Schema) -> int:
    """Write batches to an open binary sink or a path; returns the row count."""
    rows = 0
    if fmt == "csv":
        import pyarrow.csv as pacsv

        with pacsv.CSVWriter(sink, schema) as writer:
            for batch in batches:
                writer.write_batch(batch)
                rows += batch.num_rows
    elif fmt == "parquet":
        import pyarrow.parquet as pq

        with pq.ParquetWriter(sink, schema) as writer:
            for batch in batches:
                writer.write_batch(batch)
                rows += batch.num_rows
    elif fmt == "jsonl":
        out = open(sink, "wb") if isinstance(sink, str) else sink  # noqa: SIM115 - closed below when ours
        try:
            for batch in batches:
                out.write(
                    "".join(
                        json.dumps(row, default=_json_default) + "\n" for row in batch.to_pylist()
                    ).encode()
                )
                rows += batch.num_rows
        finally:
            if isinstance(sink, str):
                out.close()
    else:
        raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    return rows


def _json_default(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)
