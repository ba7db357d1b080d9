"""MySQL/MariaDB values both ways: result columns -> Arrow (row packets split, whole columns cast by Arrow) and
staged Arrow columns -> SQL literals and column types (loads). No driver import: PyMySQL objects come in."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pyarrow as pa
import pyarrow.compute as pc

from django_etl.errors import StepFailure

STATEMENT_BYTES = 4 << 20  # one INSERT's text: well under the 16 MB max_allowed_packet of both ends

# MySQL protocol type codes (pymysql.constants.FIELD_TYPE), by what they become.
_INTEGERS = {1, 2, 3, 8, 9, 13}  # TINY, SHORT, LONG, LONGLONG, INT24, YEAR
_FLOATS = {4, 5}  # FLOAT, DOUBLE
_DECIMALS = {0, 246}  # DECIMAL, NEWDECIMAL
_DATETIMES = {12}  # DATETIME: a wall-clock time, no zone
_TIMESTAMPS = {7}  # TIMESTAMP: an instant (read in UTC: the session's time zone is +00:00)
_DATES = {10, 14}
_BIT = 16
_TEXTUAL = {15, 245, 247, 248, 249, 250, 251, 252, 253, 254}  # VARCHAR, JSON, ENUM, SET, BLOBs, strings
BINARY_CHARSET = 63
UNSIGNED_FLAG = 32
# 'YYYY-00-…', '…-00' and '0000-…': MySQL's zero dates (no such day: read as NULL).
_ZERO_DATE = r"^(0000-|\d{4}-00-|\d{4}-\d{2}-00)"


def arrow_type(field) -> pa.DataType:
    """The Arrow type of one result column (a PyMySQL field descriptor)."""
    code, unsigned = field.type_code, bool(field.flags & UNSIGNED_FLAG)
    if code == 1 and field.length == 1:
        return pa.bool_()  # TINYINT(1): MySQL's BOOLEAN
    if code == 8 and unsigned:
        return pa.decimal128(20, 0)  # BIGINT UNSIGNED reaches 2**64 - 1, past int64
    if code in _INTEGERS:
        return pa.int64()
    if code in _FLOATS:
        return pa.float64()
    if code in _DECIMALS:
        precision = max(1, field.length - (1 if field.scale else 0) - (0 if unsigned else 1))
        scale = field.scale or 0
        return pa.decimal128(precision, scale) if precision <= 38 else pa.decimal256(precision, scale)
    if code in _DATETIMES:
        return pa.timestamp("us")
    if code in _TIMESTAMPS:
        return pa.timestamp("us", tz="UTC")
    if code in _DATES:
        return pa.date32()
    if code == _BIT:
        return pa.int64()
    if code in _TEXTUAL and field.charsetnr == BINARY_CHARSET and code != 245:
        return pa.binary()  # BLOB, BINARY, VARBINARY (and GEOMETRY below)
    if code == 255:
        return pa.binary()
    return pa.string()  # CHAR, VARCHAR, TEXT, JSON, ENUM, SET, TIME (it spans ±838 hours: not a time of day)


def result_schema(fields) -> pa.Schema:
    return pa.schema([pa.field(f.name, arrow_type(f)) for f in fields])


def column_array(values: list[bytes | None], kind: pa.DataType, field, encoding: str) -> pa.Array:
    """One column of raw values (the text protocol's bytes, None for NULL) as an Arrow array of ``kind``."""
    if pa.types.is_binary(kind):
        return pa.array(values, type=pa.binary())
    if field.type_code == _BIT:  # BIT(n) travels as n bits, big-endian
        return pa.array([None if v is None else int.from_bytes(v, "big") for v in values], type=kind)
    if encoding == "utf8":
        text = pa.array(values, type=pa.binary()).cast(pa.string())  # validated by Arrow, not per value
    else:  # a connector that set another charset: decoded by Python
        text = pa.array([None if v is None else v.decode(encoding) for v in values], type=pa.string())
    if pa.types.is_string(kind):
        return text
    if pa.types.is_boolean(kind):
        return pc.not_equal(text.cast(pa.int64()), 0)
    if pa.types.is_timestamp(kind) or pa.types.is_date(kind):
        text = pc.if_else(pc.match_substring_regex(text, _ZERO_DATE), pa.scalar(None, pa.string()), text)
        if pa.types.is_timestamp(kind) and kind.tz:  # a TIMESTAMP, written in the session's zone: UTC
            return text.cast(pa.timestamp(kind.unit)).cast(kind)
    return text.cast(kind)


def split_rows(payloads: list[bytes], width: int) -> list[list[bytes | None]]:
    """Text-protocol row packets -> one list of raw values per column (0xFB is NULL; lengths as the protocol
    encodes them). The only per-value Python of a read: slicing, no decoding, no conversion."""
    columns: list[list[bytes | None]] = [[] for _ in range(width)]
    appends = [column.append for column in columns]
    for data in payloads:
        pos = 0
        for append in appends:
            length = data[pos]
            if length < 251:
                pos += 1
            elif length == 251:
                append(None)
                pos += 1
                continue
            elif length == 252:
                length = data[pos + 1] | data[pos + 2] << 8
                pos += 3
            elif length == 253:
                length = int.from_bytes(data[pos + 1 : pos + 4], "little")
                pos += 4
            else:
                length = int.from_bytes(data[pos + 1 : pos + 9], "little")
                pos += 9
            append(data[pos : pos + length])
            pos += length
    return columns


def row_packets(conn, size: int) -> Iterator[list[bytes]]:
    """The payloads of a streamed result's row packets, ``size`` at a time, until its EOF packet.

    Read with PyMySQL's packet reader (which raises the server's error packets, a statement time-out
    included); the rows are split by :func:`split_rows` rather than by PyMySQL's per-field parser.
    """
    read = conn._read_packet
    chunk: list[bytes] = []
    while True:
        data = read().get_all_data()
        if data[0] == 0xFE and len(data) < 9:  # EOF: the rows are over
            conn._result.unbuffered_active = False
            break
        chunk.append(data)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def mysql_type(kind: pa.DataType) -> str:
    """The column type a staged Arrow type is created as (loads)."""
    if pa.types.is_boolean(kind):
        return "TINYINT(1)"
    if pa.types.is_integer(kind):
        if pa.types.is_unsigned_integer(kind):
            return (
                "BIGINT UNSIGNED" if kind.bit_width == 64 else ("BIGINT" if kind.bit_width == 32 else "INT")
            )
        return "INT" if kind.bit_width <= 32 else "BIGINT"
    if pa.types.is_floating(kind):
        return "DOUBLE"
    if pa.types.is_decimal(kind):
        if kind.precision <= 65 and kind.scale <= 30:
            return f"DECIMAL({kind.precision}, {max(kind.scale, 0)})"
        return "LONGTEXT"
    if pa.types.is_timestamp(kind):
        # Instants are written in UTC; DATETIME(6) because TIMESTAMP ends in 2038 (docs/step-config.md).
        return "DATETIME(6)"
    if pa.types.is_date(kind):
        return "DATE"
    if pa.types.is_time(kind):
        return "TIME(6)"
    if pa.types.is_binary(kind) or pa.types.is_large_binary(kind) or pa.types.is_fixed_size_binary(kind):
        return "LONGBLOB"
    return "LONGTEXT"


def family_name(data_type: str, column_type: str) -> str:
    """A MySQL column's type in the words drift.py compares (TINYINT(1) is a boolean, TIMESTAMP an instant)."""
    data_type, column_type = data_type.lower(), column_type.lower()
    if column_type.startswith("tinyint(1)"):
        return "boolean"
    if data_type == "timestamp":
        return "timestamptz"
    if data_type in ("blob", "tinyblob", "mediumblob", "longblob", "binary", "varbinary"):
        return "blob"
    if data_type == "json":
        return "json"
    if data_type == "bit":
        return "bigint"
    return column_type


def sql_literals(column: pa.Array, name: str) -> pa.Array:
    """One staged column as MySQL literals (text), computed by Arrow: NULL, numbers, quoted text and times.

    Text is quoted for a session with NO_BACKSLASH_ESCAPES (the load sets it), where doubling the quote is
    the whole escaping; instants are written as their UTC wall-clock time, binary values as hex literals.
    """
    kind = column.type
    if pa.types.is_null(kind):
        return pa.array(["NULL"] * len(column), type=pa.string())
    if pa.types.is_dictionary(kind):
        column, kind = column.cast(kind.value_type), kind.value_type
    if pa.types.is_floating(kind) and (
        pc.any(pc.is_nan(column)).as_py() or pc.any(pc.is_inf(column)).as_py()
    ):
        raise StepFailure(f"column {name!r} holds NaN or infinite values, which MySQL cannot store")
    if pa.types.is_boolean(kind):
        text = column.cast(pa.int8()).cast(pa.string())
    elif pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind):
        text = column.cast(pa.string())
    elif pa.types.is_timestamp(kind):
        naive = column.cast(pa.timestamp(kind.unit)) if kind.tz else column  # the same instant, in UTC
        text = _quoted(pc.strftime(naive.cast(pa.timestamp("us")), format="%Y-%m-%d %H:%M:%S"))
    elif any(
        test(kind)
        for test in (pa.types.is_date, pa.types.is_time, pa.types.is_string, pa.types.is_large_string)
    ):
        text = _quoted(column.cast(pa.string()))
    elif pa.types.is_binary(kind) or pa.types.is_large_binary(kind) or pa.types.is_fixed_size_binary(kind):
        text = pa.array(
            [None if v is None else f"X'{v.hex()}'" for v in column.to_pylist()], type=pa.string()
        )
    else:  # lists, structs, maps: JSON text
        values = [None if v is None else json.dumps(v, default=str) for v in column.to_pylist()]
        text = _quoted(pa.array(values, type=pa.string()))
    return pc.fill_null(text, "NULL")


def _quoted(text: pa.Array) -> pa.Array:
    return pc.binary_join_element_wise("'", pc.replace_substring(text, "'", "''"), "'", "")


def values_statements(batch: pa.RecordBatch, prefix: str, suffix: str) -> Iterator[str]:
    """``prefix`` + ``(…), (…)`` + ``suffix`` statements of about STATEMENT_BYTES each, for the rows of ``batch``."""
    literals = [
        sql_literals(column, name) for column, name in zip(batch.columns, batch.schema.names, strict=True)
    ]
    rows = pc.binary_join_element_wise(*literals, ",") if len(literals) > 1 else literals[0]
    rows = pc.binary_join_element_wise("(", rows, ")", "")
    ends = pc.cumulative_sum(pc.binary_length(rows).cast(pa.int64()))  # where each row's text ends
    start, offset = 0, 0
    while start < len(rows):
        # The rows ending within STATEMENT_BYTES of this statement's start (at least one).
        end = max(start + 1, pc.sum(pc.less_equal(ends, offset + STATEMENT_BYTES)).as_py() or 0)
        yield prefix + ",".join(rows.slice(start, end - start).to_pylist()) + suffix
        start, offset = end, ends[end - 1].as_py()
