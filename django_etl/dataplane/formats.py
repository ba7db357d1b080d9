"""Reading and writing CSV, JSON lines and Parquet as streams of Arrow batches (shared by file and cloud)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from typing import Any, BinaryIO, get_args

import pyarrow as pa

from django_etl.configmodel import FileFormat
from django_etl.dataplane.batches import empty_batch, widen_schema
from django_etl.dataplane.csvpieces import (
    CsvDataError,
    SourceText,
    open_quote,
    record_end,
    split_records,
    text_codec,
)

FORMATS: tuple[str, ...] = get_args(FileFormat)
# Bytes per CSV/JSON block: big enough for the multi-threaded parser, small enough to keep memory flat.
BLOCK_SIZE = 8 << 20
CSV_PIECE = 32 << 20
MAX_RUNS = 16  # runs a quoted piece is parsed in, side by side
DEFAULT_ENCODING = "utf-8"


def read_stream(
    source: str | BinaryIO,
    fmt: str,
    *,
    batch_size: int,
    delimiter: str = ",",
    label: str = "",
    encoding: str = DEFAULT_ENCODING,
    column_types: dict[str, pa.DataType] | None = None,
) -> Iterator[pa.RecordBatch]:
    """Batches of one file; malformed content raises ValueError naming ``label`` (the file).

    A file without rows yields one empty batch carrying its columns when the file tells them (a CSV header,
    a Parquet schema), nothing at all when it is empty.
    """
    label = label or "file"
    try:
        if fmt == "csv":
            yield from read_csv(
                source,
                batch_size=batch_size,
                delimiter=delimiter,
                encoding=encoding,
                column_types=column_types,
                label=label,
            )
        elif fmt == "jsonl":
            yield from read_jsonl(source, batch_size=batch_size, encoding=encoding)
        elif fmt == "parquet":
            import pyarrow.parquet as pq

            parquet = pq.ParquetFile(source)
            if parquet.metadata.num_rows == 0:
                yield empty_batch(parquet.schema_arrow)
            yield from parquet.iter_batches(batch_size=batch_size)
        else:
            raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise ValueError(f"{label} is not valid {fmt}: {exc}") from None
    except UnicodeDecodeError as exc:  # a JSON lines file that its declared encoding does not decode
        raise ValueError(f"{label} is not valid {encoding}: {exc}") from None


def reading_options(request: dict[str, Any]) -> dict[str, Any]:
    """The keys of an extract request that say how to read a file: delimiter, encoding, declared types."""
    return {
        "delimiter": request.get("delimiter") or ",",
        "encoding": request.get("encoding") or DEFAULT_ENCODING,
        "column_types": request.get("column_types") or None,
    }


def read_sources(
    sources: Iterable[tuple[str | BinaryIO, str]],
    fmt: str,
    *,
    batch_size: int,
    delimiter: str = ",",
    encoding: str = DEFAULT_ENCODING,
    column_types: dict[str, pa.DataType] | None = None,
) -> Iterator[pa.RecordBatch]:
    """Batches of several (source, label) files read as one dataset; staging widens their types.

    Sources are consumed one at a time, so a source may be a temporary file that lives only until the next
    one is asked for. Malformed content raises ValueError naming the label.
    """
    for source, label in sources:
        yield from read_stream(
            source,
            fmt,
            batch_size=batch_size,
            delimiter=delimiter,
            label=label,
            encoding=encoding,
            column_types=column_types,
        )


def head(batches: Iterable[pa.RecordBatch], limit: int) -> pa.Table:
    """The first ``limit`` rows of a stream of batches (a connector's preview)."""
    first = next((b for b in batches if b.num_rows), None)
    return pa.Table.from_batches([first]).slice(0, limit) if first is not None else pa.table({})


def read_jsonl(source: str | BinaryIO, *, batch_size: int, encoding: str) -> Iterator[pa.RecordBatch]:
    import pyarrow.json as pajson

    stream = pa.input_stream(source) if isinstance(source, str) else source
    if text_codec(encoding).name not in ("utf-8", "utf-8-sig"):
        stream = pa.transcoding_input_stream(
            stream if isinstance(stream, pa.NativeFile) else pa.PythonFile(stream), encoding, "utf-8"
        )
    try:
        reader = pajson.open_json(stream, read_options=pajson.ReadOptions(block_size=BLOCK_SIZE))
    except pa.ArrowInvalid as exc:
        if "Empty JSON" in str(exc):
            return  # an empty file: no rows, no columns
        raise
    for batch in _rechunk(reader, batch_size):
        batch.validate(full=True)  # Arrow's JSON reader does not check UTF-8: bytes must not pass as text
        yield batch


def read_csv(
    source: str | BinaryIO,
    *,
    batch_size: int,
    delimiter: str = ",",
    encoding: str = DEFAULT_ENCODING,
    column_types: dict[str, pa.DataType] | None = None,
    label: str = "file",
) -> Iterator[pa.RecordBatch]:
    """CSV in pieces of about CSV_PIECE bytes cut at record ends, each parsed by Arrow's multi-threaded reader.

    Arrow's streaming CSV reader infers types from its first block and cannot widen later, so pieces are
    cut where a record ends outside quotes (``csvpieces.record_end``): quoted values may hold newlines,
    delimiters and doubled quotes. Each piece is parsed with the types known so far (``column_types``, the
    declared ones, always win); a piece they do not fit is parsed again with its own inferred types, and
    staging widens the dataset. The file is decoded from ``encoding``; invalid bytes, NUL bytes and a quote
    that never closes raise CsvDataError naming the line and byte offset.
    """
    handle = open(source, "rb") if isinstance(source, str) else source  # noqa: SIM115 - closed below when ours
    try:
        text = SourceText(handle, encoding, label, _reopener(source), CSV_PIECE)
        yield from CsvFile(text, delimiter, column_types or {}, label).batches(batch_size)
    finally:
        if isinstance(source, str):
            handle.close()


def _reopener(source: str | BinaryIO):
    def reopen() -> BinaryIO | None:
        if isinstance(source, str):
            return open(source, "rb")
        if source.seekable():
            source.seek(0)
            return _Unclosed(source)
        return None

    return reopen


class _Unclosed:
    """A caller's file handle lent to a ``with`` block that must not close it."""

    def __init__(self, handle: BinaryIO) -> None:
        self.handle = handle

    def read(self, size: int) -> bytes:
        return self.handle.read(size)

    def __enter__(self) -> _Unclosed:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


class CsvFile:
    """One CSV file being read: its decoded text, delimiter, declared types, and what its header said."""

    def __init__(
        self, text: SourceText, delimiter: str, declared: dict[str, pa.DataType], label: str
    ) -> None:
        self.text = text
        self.delimiter = delimiter
        self.mark = ord(delimiter)
        self.declared = declared
        self.label = label
        self.names: list[str] | None = None  # the header's names, as the records after it are read
        self.known: pa.Schema | None = None  # the widened types so far

    def batches(self, batch_size: int) -> Iterator[pa.RecordBatch]:
        text, mark = self.text, self.mark
        offset, carry = 0, b""
        while True:
            buffer, got = text.fill(carry, CSV_PIECE)
            if got:
                cut = record_end(buffer, mark)
                if not cut:
                    carry = buffer
                    continue  # one record longer than the piece: read on
            else:
                if not buffer.strip():
                    break
                opened = open_quote(buffer, mark)
                if opened is not None:
                    raise CsvDataError(
                        f"{self.label}: the quoted field opened at {text.position(offset + opened)} never closes"
                    )
                cut = len(buffer)
            carry = bytes(buffer[cut:])
            del buffer[cut:]  # the buffer is now exactly one piece of whole records
            if self.names is None and not buffer.strip():  # blank lines before the header
                offset += cut
                continue
            for table in self._tables(buffer, offset):
                # a header-only file still says its columns: one empty batch
                batches = table.to_batches(max_chunksize=batch_size) or [empty_batch(table.schema)]
                del table  # memory stays a piece deep: tables go as their batches are written
                yield from batches
                del batches
            del buffer
            offset += cut
            if not got:
                break

    def _tables(self, piece: bytearray, offset: int) -> Iterator[pa.Table]:
        """A piece's tables in order. Without quotes, one: Arrow's reader splits it into blocks on its threads.

        With quotes, Arrow's block splitter loses a line break when a block ends between the CR and LF of a
        quoted CRLF (and scans serially for quotes): the piece is cut here into runs of whole records instead
        (``split_records``), each parsed as one block, the runs side by side on a thread pool.
        """
        whole = pa.py_buffer(piece)
        if piece.find(b'"') < 0:
            yield self._typed(self._parse(whole, offset, one_block=False))
            return
        spans = split_records(piece, self.mark, max(1, min(MAX_RUNS, len(piece) // BLOCK_SIZE)))
        if self.names is None:  # the header names the columns the other runs are read with
            start, end = spans.pop(0)
            yield self._typed(self._parse(whole.slice(start, end - start), offset + start, one_block=True))

        def parse(span: tuple[int, int]) -> pa.Table:
            start, end = span
            return self._parse(whole.slice(start, end - start), offset + start, one_block=True)

        parsed = map(parse, spans) if len(spans) < 2 else _runs_pool().map(parse, spans)
        for table in list(parsed):  # every run of the piece parsed with the same known types
            yield self._typed(table)

    def _typed(self, table: pa.Table) -> pa.Table:
        """The table under the header's names; the known types widened by it."""
        if self.names is None:
            self.names = column_names(table.column_names)
            table = table.rename_columns(self.names)
        elif table.column_names != self.names:
            table = table.rename_columns(self.names)
        self.known = table.schema if self.known is None else widen_schema(self.known, table.schema)
        return table

    def _parse(self, records: pa.Buffer, offset: int, *, one_block: bool) -> pa.Table:
        """Records as a table: first with the known types, then (if they do not fit) with their own.

        ``one_block``: parse on this thread as one block (a run of a quoted piece), else on Arrow's threads.
        """
        import pyarrow.csv as pacsv

        if one_block:
            size = max(records.size + 1, 1 << 10)
            read = pacsv.ReadOptions(column_names=self.names, block_size=size, use_threads=False)
        else:
            read = pacsv.ReadOptions(column_names=self.names, block_size=BLOCK_SIZE)
        # One block never splits inside a quoted value; the quote-aware splitter is not needed.
        parse = pacsv.ParseOptions(delimiter=self.delimiter, newlines_in_values=False)
        declared = self.declared
        forced = {f.name: f.type for f in self.known or () if not pa.types.is_null(f.type)} | declared
        attempts = [forced, declared] if forced != declared else [declared]
        for attempt, types in enumerate(attempts):
            # As PostgreSQL's COPY reads CSV: an unquoted empty field is NULL, a quoted "" an empty string, and
            # nothing else is (Arrow's defaults would also read NA, N/A, NULL and nan as NULL: Namibia's code).
            convert = pacsv.ConvertOptions(
                null_values=[""],
                strings_can_be_null=True,
                quoted_strings_can_be_null=False,
                column_types=types,
            )
            try:
                table = pacsv.read_csv(
                    records, read_options=read, parse_options=parse, convert_options=convert
                )
            except pa.ArrowInvalid as exc:
                message = str(exc)
                if "Empty CSV" in message:
                    return pa.table({})
                if "UTF8" in message or "utf8" in message.lower():
                    _refuse_invalid_utf8(records, self.text, offset, self.label)
                if "conversion error" in message and attempt + 1 < len(attempts):
                    continue  # the known types do not fit these records: infer their own
                where = self.text.position(offset)
                hint = " (a type declared in 'schema')" if "conversion error" in message and declared else ""
                raise CsvDataError(
                    f"{self.label} is not valid csv{hint}: {message} (in the rows from {where})"
                ) from None
            if any(pa.types.is_binary(f.type) for f in table.schema):
                _refuse_invalid_utf8(records, self.text, offset, self.label)
            return table
        raise AssertionError("unreachable")


_POOL = None


def _runs_pool():
    """Threads that parse the runs of a quoted piece side by side (Arrow releases the GIL while parsing)."""
    global _POOL
    if _POOL is None:
        from concurrent.futures import ThreadPoolExecutor

        _POOL = ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2), thread_name_prefix="etl-csv-run")
    return _POOL


def column_names(header: list[str]) -> list[str]:
    """The header's names with the blanks a trailing delimiter leaves named ``column_<n>`` and repeats
    numbered (``amount``, ``amount_2``): a table cannot hold either."""
    names: list[str] = []
    for position, name in enumerate(header, start=1):
        name = name if name.strip() else f"column_{position}"
        candidate, count = name, 1
        while candidate in names:
            count += 1
            candidate = f"{name}_{count}"
        names.append(candidate)
    return names


def _refuse_invalid_utf8(piece: pa.Buffer, text: SourceText, offset: int, label: str) -> None:
    try:
        piece.to_pybytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        bad = exc.object[exc.start : exc.end].hex(" ")
        raise CsvDataError(
            f"{label}: bytes {bad} are not valid utf-8 at {text.position(offset + exc.start)} "
            "(not UTF-8 text: declare the file's 'encoding', e.g. 'latin-1' or 'cp1252')"
        ) from None


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
