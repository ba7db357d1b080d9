"""Between runs: how a staged dataset's columns differ from its target table's, and the four answers to it.

A load compares the staged schema with the table before writing (``ledger.prepare_target``):

- **added**: staged columns the table lacks;
- **missing**: columns earlier loads of this platform wrote into the table (the load ledger keeps each load's
  staged columns) that the staged dataset lacks now; a table's own extra columns (a surrogate key, a
  ``loaded_at`` default) were never staged, so they are never missing;
- **retyped**: columns whose staged type the table's type cannot hold (a ``bigint`` column, staged ``double``).

``on_schema_change`` (dbt's options) says what the load does: ``fail`` (the default: nothing is written),
``ignore`` (load the columns the table has), ``append_new_columns`` (add the new columns first),
``sync_all_columns`` (add new columns, drop missing ones, change retyped ones to the staged type).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from django_etl.errors import StepFailure

OPTIONS = ("fail", "ignore", "append_new_columns", "sync_all_columns")


@dataclass
class SchemaChanges:
    """What differs between a staged dataset and its target table, and what the load did about it."""

    table: str
    option: str
    added: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    retyped: list[tuple[str, str, str]] = field(default_factory=list)  # (column, table type, staged type)
    applied: list[str] = field(default_factory=list)  # the statements' effects, in words

    def __bool__(self) -> bool:
        return bool(self.added or self.missing or self.retyped)

    @property
    def columns(self) -> list[str]:
        return [*self.added, *self.missing, *(c for c, _, _ in self.retyped)]

    def describe(self) -> str:
        parts = []
        if self.added:
            parts.append(f"staged column(s) {self.added} are not in table {self.table!r}")
        if self.missing:
            parts.append(f"column(s) {self.missing} loaded into {self.table!r} before are not staged")
        if self.retyped:
            changes = ", ".join(f"{c} {old} -> {new}" for c, old, new in self.retyped)
            parts.append(f"column(s) whose staged type {self.table!r} cannot hold: {changes}")
        return "schema drift: " + "; ".join(parts)

    def as_check(self, *, failed: bool, rolled_back: bool = False) -> dict[str, Any]:
        """The manifest entry write-back turns into a DATA_QUALITY alert naming the columns."""
        if rolled_back:
            outcome = f"on_schema_change '{self.option}', but the load failed: nothing was changed"
        elif failed:
            outcome = (
                "on_schema_change is 'fail': nothing was loaded; set it to 'ignore', 'append_new_columns' "
                "or 'sync_all_columns' to load anyway"
            )
        else:
            outcome = f"on_schema_change '{self.option}': " + ("; ".join(self.applied) or "loaded as it is")
        return {
            "name": f"schema_change({self.table})",
            "check": "schema_change",
            "severity": "error" if failed else "warning",
            "passed": False,
            "failing_count": len(self.columns),
            "message": f"{self.describe()}. {outcome}",
            "columns": self.columns,
            "added": self.added,
            "missing": self.missing,
            "retyped": [{"column": c, "table_type": old, "staged_type": new} for c, old, new in self.retyped],
            "on_schema_change": self.option,
        }


class SchemaChangeError(StepFailure):
    """on_schema_change 'fail' met a change: the message and ``changes`` name every column."""

    def __init__(self, changes: SchemaChanges) -> None:
        super().__init__(
            f"{changes.describe()} (on_schema_change is 'fail'; 'ignore', 'append_new_columns' or "
            "'sync_all_columns' would load it)"
        )
        self.changes = changes


# ---------------------------------------------------------------- comparing types

_INTEGER = re.compile(r"\bint(eger|\d)?\b|bigint|smallint|tinyint|mediumint|serial")


def table_family(sql_type: str) -> str:
    """A column's declared SQL type (PostgreSQL's format_type, SQLite's declaration) as a type family."""
    text = (sql_type or "").lower()
    if not text:
        return "any"  # SQLite without a declared type holds anything
    if text.startswith("bool"):
        return "bool"
    if text.startswith(("timestamp with time zone", "timestamptz")):
        return "timestamptz"
    if text.startswith(("timestamp", "datetime")):
        return "timestamp"
    if text.startswith("date"):
        return "date"
    if text.startswith("time"):
        return "time"
    if _INTEGER.search(text):
        return "integer"
    if text.startswith(("numeric", "decimal")):
        return "decimal"
    if any(word in text for word in ("double", "real", "float")):
        return "float"
    if any(word in text for word in ("char", "text", "clob", "string")):
        return "string"
    if text.startswith(("bytea", "blob")):
        return "binary"
    return "other"  # json, uuid, arrays, enums...: they take text


def staged_family(kind: pa.DataType) -> str:
    if pa.types.is_null(kind):
        return "null"
    if pa.types.is_boolean(kind):
        return "bool"
    if pa.types.is_integer(kind):
        return "integer"
    if pa.types.is_decimal(kind):
        return "decimal"
    if pa.types.is_floating(kind):
        return "float"
    if pa.types.is_timestamp(kind):
        return "timestamptz" if kind.tz else "timestamp"
    if pa.types.is_date(kind):
        return "date"
    if pa.types.is_time(kind):
        return "time"
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return "string"
    if pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
        return "binary"
    return "other"


# Table family -> the staged families its columns hold without losing meaning.
_HOLDS: dict[str, set[str]] = {
    "bool": {"bool"},
    "integer": {"integer"},
    "decimal": {"integer", "decimal", "float"},
    "float": {"integer", "decimal", "float"},
    "date": {"date"},
    "timestamp": {"date", "timestamp", "timestamptz"},
    "timestamptz": {"date", "timestamp", "timestamptz"},
    "time": {"time"},
    "string": {"bool", "integer", "decimal", "float", "date", "timestamp", "timestamptz", "time", "string"},
    "binary": {"binary"},
    "other": {"string", "other"},
}
# SQLite stores booleans as integers and typed values in TEXT columns as text.
_SQLITE_HOLDS = {**_HOLDS, "integer": {"bool", "integer"}, "float": {"bool", "integer", "decimal", "float"}}


def holds(table_type: str, staged: pa.DataType, dialect: str) -> bool:
    """Whether a column of ``table_type`` holds values of the staged type."""
    family, kind = table_family(table_type), staged_family(staged)
    if kind == "null" or family == "any":
        return True
    rules = _SQLITE_HOLDS if dialect == "sqlite" else _HOLDS
    return kind in rules.get(family, {"string"})


def compare(
    table: str,
    option: str,
    staged: pa.Schema,
    columns: dict[str, str],
    loaded_before: set[str],
    dialect: str,
) -> SchemaChanges:
    """The changes between ``staged`` and a table's ``columns`` (name -> declared type)."""
    changes = SchemaChanges(table=table, option=option)
    changes.added = [name for name in staged.names if name not in columns]
    changes.missing = [name for name in columns if name in loaded_before and name not in staged.names]
    changes.retyped = [
        (f.name, columns[f.name], str(f.type))
        for f in staged
        if f.name in columns and not holds(columns[f.name], f.type, dialect)
    ]
    return changes
