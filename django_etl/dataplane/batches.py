"""Arrow batches of one dataset: rows grouped into batches, and the one type lattice batches widen along.

Batches of one dataset may disagree: a CSV piece infers ``int64`` where a later one needs ``float64``, an API
page has a key the first lacked, a SQLite column holds text in some rows. They widen instead of failing:
``widen_type`` is the lattice (documented in docs/step-config.md, "Types across batches"), ``widen_schema`` joins
two schemas (columns in order of first appearance), ``conform_to`` casts a batch to the joined schema.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pyarrow as pa

from django_etl.errors import SchemaDriftError

MAX_DECIMAL_PRECISION = 38
# Digits an int64 needs in a decimal (9,223,372,036,854,775,807).
INT64_DIGITS = 19
_TIME_UNITS = ("s", "ms", "us", "ns")


def empty_batch(schema: pa.Schema) -> pa.RecordBatch:
    """A batch of no rows that still carries ``schema`` (how a read says which columns it would have had)."""
    return pa.RecordBatch.from_arrays([pa.array([], type=f.type) for f in schema], schema=schema)


# ---------------------------------------------------------------- the lattice


def widen_type(a: pa.DataType, b: pa.DataType) -> pa.DataType:
    """The narrowest type holding values of both ``a`` and ``b``.

    null < bool < int64 < float64 < string; a decimal joins an integer as a decimal wide enough for both and a
    float as float64; date < timestamp; timestamps join at the finer unit (time zones: aware with aware stays
    aware, naive with aware becomes string); a list joins a list element-wise, a struct a struct field by field;
    anything else meets at string (binary with string stays binary).
    """
    a, b = _plain(a), _plain(b)
    if a == b:
        return a
    if pa.types.is_null(a):
        return b
    if pa.types.is_null(b):
        return a
    for kind in (_numeric, _temporal, _textual, _nested):
        joined = kind(a, b)
        if joined is not None:
            return joined
    return pa.string()


def _plain(kind: pa.DataType) -> pa.DataType:
    """Types that only differ in width or encoding from a lattice member, as that member."""
    if pa.types.is_dictionary(kind):
        return _plain(kind.value_type)
    if pa.types.is_integer(kind):
        return pa.int64()
    if pa.types.is_floating(kind):
        return pa.float64()
    if pa.types.is_large_string(kind) or pa.types.is_string_view(kind):
        return pa.string()
    if pa.types.is_large_binary(kind) or pa.types.is_binary_view(kind) or pa.types.is_fixed_size_binary(kind):
        return pa.binary()
    if pa.types.is_large_list(kind):
        return pa.list_(kind.value_type)
    if pa.types.is_date(kind):
        return pa.date32()
    return kind


def _rank(kind: pa.DataType) -> int | None:
    if pa.types.is_boolean(kind):
        return 0
    if pa.types.is_integer(kind):
        return 1
    if pa.types.is_decimal(kind):
        return 2
    if pa.types.is_floating(kind):
        return 3
    return None


def _numeric(a: pa.DataType, b: pa.DataType) -> pa.DataType | None:
    ra, rb = _rank(a), _rank(b)
    if ra is None or rb is None:
        return None
    if pa.types.is_decimal(a) and pa.types.is_decimal(b):
        scale = max(a.scale, b.scale)
        digits = max(a.precision - a.scale, b.precision - b.scale)
        return _decimal(digits + scale, scale)
    if pa.types.is_decimal(a) or pa.types.is_decimal(b):
        decimal, other = (a, b) if pa.types.is_decimal(a) else (b, a)
        if pa.types.is_floating(other):
            return pa.float64()
        digits = max(decimal.precision - decimal.scale, INT64_DIGITS)
        return _decimal(digits + decimal.scale, decimal.scale)
    return a if ra > rb else b


def _decimal(precision: int, scale: int) -> pa.DataType:
    # Past 38 digits no decimal128 holds both: float64 keeps the magnitude, if not every digit.
    return pa.decimal128(precision, scale) if precision <= MAX_DECIMAL_PRECISION else pa.float64()


def _temporal(a: pa.DataType, b: pa.DataType) -> pa.DataType | None:
    if pa.types.is_date(a) and pa.types.is_timestamp(b):
        return b
    if pa.types.is_timestamp(a) and pa.types.is_date(b):
        return a
    if pa.types.is_timestamp(a) and pa.types.is_timestamp(b):
        if bool(a.tz) != bool(b.tz):
            return pa.string()  # a wall-clock time and an instant: no common meaning
        unit = max(a.unit, b.unit, key=_TIME_UNITS.index)
        return pa.timestamp(unit, tz="UTC" if a.tz and a.tz != b.tz else a.tz)
    if pa.types.is_time(a) and pa.types.is_time(b):
        unit = max(a.unit, b.unit, key=_TIME_UNITS.index)
        return pa.time32(unit) if unit in ("s", "ms") else pa.time64(unit)
    if pa.types.is_duration(a) and pa.types.is_duration(b):
        return pa.duration(max(a.unit, b.unit, key=_TIME_UNITS.index))
    return None


def _textual(a: pa.DataType, b: pa.DataType) -> pa.DataType | None:
    if pa.types.is_binary(a) or pa.types.is_binary(b):
        other = b if pa.types.is_binary(a) else a
        return pa.binary() if pa.types.is_binary(other) or pa.types.is_string(other) else pa.string()
    if pa.types.is_string(a) or pa.types.is_string(b):
        return pa.string()
    return None


def _nested(a: pa.DataType, b: pa.DataType) -> pa.DataType | None:
    if pa.types.is_list(a) and pa.types.is_list(b):
        return pa.list_(widen_type(a.value_type, b.value_type))
    if pa.types.is_struct(a) and pa.types.is_struct(b):
        fields = {f.name: f.type for f in a}
        for f in b:
            fields[f.name] = widen_type(fields[f.name], f.type) if f.name in fields else f.type
        return pa.struct(list(fields.items()))
    return None


def widen_schema(a: pa.Schema, b: pa.Schema) -> pa.Schema:
    """Both schemas' columns (``a``'s order, then ``b``'s new ones), each at the join of its types."""
    fields = {f.name: f.type for f in a}
    for f in b:
        fields[f.name] = widen_type(fields[f.name], f.type) if f.name in fields else f.type
    return pa.schema(list(fields.items()))


def widened_columns(before: pa.Schema, after: pa.Schema) -> list[str]:
    """How ``after`` differs from ``before``: 'name int64 -> double' and 'name (new)' entries."""
    changes = []
    for f in after:
        if f.name not in before.names:
            changes.append(f"{f.name} (new)")
        elif before.field(f.name).type != f.type:
            changes.append(f"{f.name} {before.field(f.name).type} -> {f.type}")
    return changes


def conform_to(batch: pa.RecordBatch, schema: pa.Schema, label: str = "data") -> pa.RecordBatch:
    """``batch`` with ``schema``'s columns in order: cast up along the lattice, absent columns as NULLs.

    ``schema`` must be at least as wide as the batch (from ``widen_schema``); a column the batch has and the
    schema lacks, or a value the cast cannot carry (an int64 too large for a decimal), raises
    SchemaDriftError naming ``label`` and the column.
    """
    if batch.schema == schema:
        return batch
    extra = sorted(set(batch.schema.names) - set(schema.names))
    if extra:
        raise SchemaDriftError(f"schema drift in {label}: columns {extra} are not in {schema.names}")
    arrays = []
    for field in schema:
        if field.name not in batch.schema.names:
            arrays.append(pa.nulls(batch.num_rows, type=field.type))
            continue
        arrays.append(cast_column(batch.column(field.name), field.type, f"{label}, column {field.name!r}"))
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def cast_column(values: pa.Array, kind: pa.DataType, label: str) -> pa.Array:
    """One column cast to ``kind`` (nested values to string are written as JSON); SchemaDriftError otherwise."""
    if values.type == kind:
        return values
    if pa.types.is_string(kind) and _needs_json(values.type):
        return pa.array([_json_text(v) for v in values.to_pylist()], type=kind)
    try:
        return values.cast(kind)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
        raise SchemaDriftError(f"{label}: values of type {values.type} do not fit {kind}: {exc}") from None


def _needs_json(kind: pa.DataType) -> bool:
    return pa.types.is_nested(kind) or pa.types.is_binary(kind) or pa.types.is_large_binary(kind)


def _json_text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, dict | list | tuple | bool):
        return json.dumps(value, default=str, ensure_ascii=False)
    return str(value)


# ---------------------------------------------------------------- rows to batches


def batches_of_rows(rows: Iterator[dict[str, Any]], batch_size: int) -> Iterator[pa.RecordBatch]:
    """Group row dicts into record batches, each with its own inferred types (staging widens them).

    Keys absent from some rows are NULL there; a column whose values mix kinds within one batch (1 and
    "1", 2 and 2.5, an object and a number) takes the lattice's join of them.
    """
    chunk: list[dict[str, Any]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= batch_size:
            yield rows_to_batch(chunk)
            chunk = []
    if chunk:
        yield rows_to_batch(chunk)


def rows_to_batch(chunk: list[dict[str, Any]]) -> pa.RecordBatch:
    try:
        return pa.RecordBatch.from_pylist(chunk)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        pass  # mixed kinds in a column: infer column by column below
    names: dict[str, None] = {}
    for row in chunk:
        names.update(dict.fromkeys(row))
    arrays = [_column_array([row.get(name) for row in chunk]) for name in names]
    return pa.RecordBatch.from_arrays(arrays, names=list(names))


def _column_array(values: list[Any]) -> pa.Array:
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        pass
    present = [v for v in values if v is not None]
    if all(isinstance(v, int | float | Decimal) and not isinstance(v, bool) for v in present):
        return pa.array([None if v is None else float(v) for v in values], type=pa.float64())
    if all(isinstance(v, bool | int) for v in present):  # True and 2: bool < int64
        return pa.array([None if v is None else int(v) for v in values], type=pa.int64())
    return pa.array([_json_text(v) if not isinstance(v, str) else v for v in values], type=pa.string())
