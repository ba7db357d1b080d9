"""The column type names a step config may declare (an extract's ``schema``), and the Arrow type of each.

Names are read the way people write them: SQL spellings (``bigint``, ``double precision``, ``numeric(12,2)``,
``timestamp with time zone``) and Arrow's own, as manifests show them (``int64``, ``double``,
``timestamp[us, tz=UTC]``, ``decimal128(12, 2)``). ``canonical_type`` validates a name without pyarrow (the
config models use it); ``arrow_type`` gives the type a staged column gets.
"""

from __future__ import annotations

import re
from typing import Any

_ALIASES: dict[str, str] = {
    **dict.fromkeys(("string", "str", "text", "varchar", "utf8", "large_string", "char"), "string"),
    **dict.fromkeys(
        ("int", "integer", "int64", "bigint", "int32", "int16", "int8", "smallint", "long"), "int64"
    ),
    **dict.fromkeys(("float", "float64", "double", "double precision", "real", "float32"), "float64"),
    **dict.fromkeys(("bool", "boolean"), "bool"),
    **dict.fromkeys(("date", "date32", "date32[day]"), "date"),
    **dict.fromkeys(("timestamp", "datetime", "timestamp without time zone"), "timestamp"),
    **dict.fromkeys(("timestamptz", "timestamp with time zone"), "timestamptz"),
    **dict.fromkeys(("time", "time without time zone"), "time"),
    **dict.fromkeys(("binary", "bytea", "bytes", "blob"), "binary"),
}
_DECIMAL = re.compile(r"^(?:decimal|numeric|decimal128)\s*(?:\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\))?$")
_ARROW_TIMESTAMP = re.compile(r"^timestamp\[(s|ms|us|ns)(?:,\s*tz=([^\]]+))?\]$")
TYPE_NAMES = "string, int64, float64, bool, date, timestamp, timestamptz, time, binary, decimal(p,s)"


def canonical_type(name: str) -> str:
    """The canonical spelling of a declared type name; ValueError naming the accepted names otherwise."""
    text = " ".join(str(name).strip().lower().split())
    if text in _ALIASES:
        return _ALIASES[text]
    match = _ARROW_TIMESTAMP.match(text)
    if match:
        return "timestamptz" if match.group(2) else "timestamp"
    match = _DECIMAL.match(text)
    if match:
        precision = int(match.group(1) or 38)
        scale = int(match.group(2) or (0 if match.group(1) else 9))
        if not 1 <= precision <= 38 or scale > precision:
            raise ValueError(f"type {name!r}: a decimal's precision is 1 to 38 and its scale at most that")
        return f"decimal({precision},{scale})"
    raise ValueError(f"unknown type {name!r}; use one of {TYPE_NAMES}")


def arrow_type(name: str) -> Any:
    """The Arrow type of a declared type name (``canonical_type`` first)."""
    import pyarrow as pa

    canonical = canonical_type(name)
    if canonical.startswith("decimal("):
        precision, scale = canonical.removeprefix("decimal(").rstrip(")").split(",")
        return pa.decimal128(int(precision), int(scale))
    return {
        "string": pa.string(),
        "int64": pa.int64(),
        "float64": pa.float64(),
        "bool": pa.bool_(),
        "date": pa.date32(),
        "timestamp": pa.timestamp("us"),
        "timestamptz": pa.timestamp("us", tz="UTC"),
        "time": pa.time64("us"),
        "binary": pa.binary(),
    }[canonical]


def arrow_schema(declared: dict[str, str]) -> Any:
    """A declared ``{column: type}`` mapping as an Arrow schema, in the mapping's order."""
    import pyarrow as pa

    return pa.schema([(column, arrow_type(kind)) for column, kind in declared.items()])


def schema_from_fields(fields: list[dict[str, str]]) -> Any:
    """A manifest's ``schema`` list (``{"name", "type"}`` with Arrow's type text) as an Arrow schema.

    Types this module cannot read back (nested ones) come back as null: the column is known, its type not.
    """
    import pyarrow as pa

    return pa.schema([pa.field(entry["name"], _arrow_text(str(entry["type"]))) for entry in fields])


def _arrow_text(text: str) -> Any:
    """Arrow's type text (``str(type)``) read back; declared names as a fallback; null when neither."""
    import pyarrow as pa

    match = _ARROW_TIMESTAMP.match(text)
    if match:
        return pa.timestamp(match.group(1), tz=match.group(2))
    if text == "date32[day]":
        return pa.date32()
    if text in ("null", "large_string"):
        return pa.null() if text == "null" else pa.large_string()
    try:
        return pa.type_for_alias(text)
    except ValueError:
        pass
    try:
        return arrow_type(text)
    except ValueError:
        return pa.null()
