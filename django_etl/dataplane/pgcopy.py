"""A PostgreSQL query's rows as Arrow batches through ``COPY (query) TO STDOUT``, converted by Arrow, not per row.

The server sends the rows as CSV; Arrow's CSV reader (C++) parses them straight into the column types the
cursor path maps (``postgres.pg_schema``): integers, floats, booleans (``t``/``f``), dates, timestamps,
numerics and text. The few types whose Python form the cursor path turns into text — json, jsonb, arrays,
uuid, intervals, bytea… — are read as text and handed to psycopg's own text loader for their type, then to the
same text rule (``postgres._as_text``), so each value comes out exactly as the cursor path made it. Instants
(``timestamptz``) are parsed by Arrow when their offset is whole minutes and by psycopg otherwise (a pre-1900
zone offset in seconds). NULL is an unquoted empty field, an empty string a quoted one: the reader keeps them
apart (``quoted_strings_can_be_null=False``).
"""

from __future__ import annotations

import io
import select
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv

READ_BYTES = 1 << 20  # what one read of the COPY stream gathers for Arrow (a few thousand rows)
BLOCK_BYTES = 1 << 22  # Arrow's CSV block: rows parsed together, then handed on
# Types psycopg loads as the very text the server sends: no loader needed.
TEXT_OIDS = frozenset({18, 19, 25, 705, 1042, 1043})
TIMESTAMPTZ_OID = 1184


class CopyOut:
    """One ``COPY … TO STDOUT`` read from libpq directly: one C call per row, none of psycopg's per-row machinery.

    The statement goes in the extended protocol (``send_query_params``), which runs exactly one statement. The
    connection's transaction and its settings are psycopg's; only this statement bypasses the cursor.
    """

    def __init__(self, conn: Any, statement: str) -> None:
        from psycopg.pq import ExecStatus

        self.conn = conn
        self.pgconn = conn.pgconn
        self.finished = False
        self.pgconn.send_query_params(statement.encode(), None)
        result = self._result()
        if result is None or result.status != ExecStatus.COPY_OUT:
            self._drain_results()
            self.finished = True
            self._raise(result)

    def _wait(self) -> None:
        # Woken at least every second, so a cancel by the watchdog (an error from the server) is seen.
        select.select([self.pgconn.socket], [], [], 1.0)
        self.pgconn.consume_input()

    def _result(self):
        while self.pgconn.is_busy():
            self._wait()
        return self.pgconn.get_result()

    def _drain_results(self) -> None:
        while self._result() is not None:
            pass

    def _raise(self, result) -> None:
        import psycopg

        if result is None:
            raise psycopg.OperationalError("COPY ended without a result")
        raise psycopg.errors.error_from_result(result, encoding=self.conn.info.encoding)

    def read_into(self, out: bytearray, wanted: int) -> None:
        """Append rows to ``out`` until it holds ``wanted`` bytes or the COPY ends (then check how it ended)."""
        from psycopg.pq import ExecStatus

        get, have = self.pgconn.get_copy_data, len(out)
        while have < wanted and not self.finished:
            size, data = get(1)
            if size > 0:  # one row per call: this loop is the only per-row Python of a read
                out += data
                have += size
            elif size == 0:
                self._wait()
            else:  # -1: the rows are over; the statement's result says whether it succeeded
                self.finished = True
                result = self._result()
                self._drain_results()
                if result is None or result.status != ExecStatus.COMMAND_OK:
                    self._raise(result)

    def close(self) -> None:
        """Stop a COPY the reader leaves early: cancel it and read what was already sent, so the connection is
        usable (the transaction then ends as usual)."""
        if self.finished:
            return
        import psycopg

        self.conn.cancel_safe()
        out = bytearray()
        try:
            while not self.finished:
                out.clear()
                self.read_into(out, READ_BYTES)
        except psycopg.errors.QueryCanceled:
            pass


class CopyStream(io.RawIOBase):
    """The bytes a ``COPY … TO STDOUT`` sends, as a file Arrow pulls from in reads of about a megabyte."""

    def __init__(self, copy: CopyOut) -> None:
        self.copy = copy
        first = bytearray()
        copy.read_into(first, 1)
        self.first = bytes(first)  # b"" when the result has no row

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        out = bytearray(self.first)
        self.first = b""
        self.copy.read_into(out, size if size and size > 0 else READ_BYTES)
        return bytes(out)

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


class CopyPlan:
    """How the CSV columns of one result become the Arrow columns of ``schema`` (the cursor path's types)."""

    def __init__(self, conn: Any, description: Any, schema: pa.Schema) -> None:
        from psycopg.pq import Format

        self.schema = schema
        self.names = [f"c{index}" for index in range(len(schema))]  # result columns may repeat a name
        self.column_types: dict[str, pa.DataType] = {}
        self.loaders: dict[int, Any] = {}
        self.instants: set[int] = set()
        for index, (column, field) in enumerate(zip(description, schema, strict=True)):
            oid, kind = column.type_code, field.type
            direct = not (pa.types.is_string(kind) or (pa.types.is_timestamp(kind) and kind.tz))
            self.column_types[self.names[index]] = kind if direct else pa.string()
            if pa.types.is_timestamp(kind) and kind.tz:
                self.instants.add(index)
            if not direct and oid not in TEXT_OIDS:
                loader = conn.adapters.get_loader(oid, Format.TEXT)
                if loader is not None:  # else psycopg too hands over the text as it came
                    self.loaders[index] = loader(oid, conn)

    def reader(self, stream: CopyStream) -> pacsv.CSVStreamingReader:
        return pacsv.open_csv(
            stream,
            read_options=pacsv.ReadOptions(column_names=self.names, block_size=BLOCK_BYTES),
            # A row of one NULL column is an empty line: a row, not a line to skip.
            parse_options=pacsv.ParseOptions(newlines_in_values=True, ignore_empty_lines=False),
            convert_options=pacsv.ConvertOptions(
                column_types=self.column_types,
                null_values=[""],
                strings_can_be_null=True,
                quoted_strings_can_be_null=False,
                true_values=["t"],
                false_values=["f"],
            ),
        )

    def finish(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        from django_etl.dataplane.postgres import _as_text

        arrays = []
        for index, field in enumerate(self.schema):
            column = batch.column(index)
            if index in self.instants:
                column = self._instants(column, field.type, index)
            elif index in self.loaders:
                load = self.loaders[index].load
                column = pa.array(
                    [None if v is None else _as_text(load(v.encode())) for v in column.to_pylist()],
                    type=pa.string(),
                )
            arrays.append(column)
        return pa.RecordBatch.from_arrays(arrays, schema=self.schema)

    def _instants(self, column: pa.Array, kind: pa.DataType, index: int) -> pa.Array:
        try:
            return column.cast(kind)
        except pa.ArrowInvalid:  # an offset in seconds (a zone's local mean time before 1900): psycopg's way
            load = self.loaders[index].load
            return pa.array([None if v is None else load(v.encode()) for v in column.to_pylist()], type=kind)


def copy_batches(conn: Any, statement: str, plan: CopyPlan) -> Iterator[pa.RecordBatch]:
    """The rows of ``statement`` (a ``COPY (query) TO STDOUT (FORMAT csv)``) as batches of ``plan.schema``."""
    copy = CopyOut(conn, statement)
    try:
        stream = CopyStream(copy)
        if not stream.first:
            return
        for batch in plan.reader(stream):
            yield plan.finish(batch)
    finally:
        copy.close()


def rebatch(batches: Iterator[pa.RecordBatch], size: int) -> Iterator[pa.RecordBatch]:
    """The same rows in batches of exactly ``size`` rows (the last one shorter)."""
    pending: list[pa.RecordBatch] = []
    count = 0
    for batch in batches:
        while batch.num_rows:
            take = min(size - count, batch.num_rows)
            pending.append(batch.slice(0, take))
            count += take
            batch = batch.slice(take)
            if count == size:
                yield pending[0] if len(pending) == 1 else pa.concat_batches(pending)
                pending, count = [], 0
    if pending:
        yield pending[0] if len(pending) == 1 else pa.concat_batches(pending)
