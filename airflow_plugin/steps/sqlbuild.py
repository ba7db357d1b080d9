"""Compile the transform's declarative operations to DuckDB SQL, tracking column lineage as it goes.

Every tenant fragment (a condition, an expression, an ORDER BY, a type) is checked on its own by DuckDB's
parser, placed on lines of its own, and the statement it lands in is checked again as one SELECT over the
step's inputs before DuckDB binds it (airflow_plugin/steps/sqlbox.py).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from airflow_plugin.steps.context import StepFailure
from airflow_plugin.steps.sqlbox import fragment, quote
from django_etl.errors import first_line

if TYPE_CHECKING:
    from airflow_plugin.steps.sqlbox import SqlBox

IDENTIFIER = re.compile(r'"((?:[^"]|"")+)"|\b([A-Za-z_][A-Za-z0-9_]*)\b')
RANK = {"direct": 0, "filtered": 1, "derived": 2, "aggregated": 3}


def referenced(expression: str, columns: list[str]) -> list[str]:
    """The known columns an SQL expression mentions (quoted or bare)."""
    found = []
    for quoted, bare in IDENTIFIER.findall(expression):
        name = quoted.replace('""', '"') if quoted else bare
        if name in columns and name not in found:
            found.append(name)
    return found


class OperationCompiler:
    """Wraps each operation around the previous query; knows the columns and their sources at each stage."""

    def __init__(self, first: str, inputs: dict[str, list[str]], box: SqlBox) -> None:
        self.inputs = inputs
        self.box = box
        self.sql = f"SELECT * FROM {quote(first)}"
        self.columns = list(inputs[first])
        self.lineage: dict[str, list[str]] = {c: [f"{first}.{c}"] for c in self.columns}
        self.kind = "direct"
        self.key = "config.operations"  # the operation being applied, for messages

    def apply(self, index: int, operation: Any) -> None:
        import duckdb

        self.key = f"config.operations[{index - 1}]"
        where = f"{self.key} ({operation.op})"
        handler = getattr(self, f"_{operation.op}")
        before = (self.sql, list(self.columns), dict(self.lineage))
        handler(where, operation, f"step{index}")
        try:
            self.box.check_select(self.sql, where)
            self.columns = self.box.columns(self.sql)
        except duckdb.Error as exc:
            self.sql, self.columns, self.lineage = before
            raise StepFailure(f"{where}: {first_line(exc)}") from None
        except StepFailure:
            self.sql, self.columns, self.lineage = before
            raise

    def mapping(self) -> dict[str, list[str]]:
        return {column: self.lineage.get(column, []) for column in self.columns}

    def relationship(self) -> str:
        return self.kind

    # ------------------------------------------------------------ helpers
    def _need(self, where: str, names: list[str]) -> None:
        missing = [n for n in names if n not in self.columns]
        if missing:
            raise StepFailure(f"{where}: unknown column(s) {missing}; available: {self.columns}")

    def _mark(self, kind: str) -> None:
        if RANK[kind] > RANK[self.kind]:
            self.kind = kind

    def _sources(self, expression: str) -> list[str]:
        return sorted({s for c in referenced(expression, self.columns) for s in self.lineage.get(c, [])})

    def _wrap(self, select: str, alias: str, tail: str = "") -> None:
        self.sql = f"SELECT {select} FROM ({self.sql}) AS {alias}{tail}"

    def _expression(self, key: str, expression: str) -> str:
        """A tenant expression, parsed on its own first, then on lines of its own inside parentheses."""
        self.box.check_expression(expression, f"{self.key}.{key}")
        return f"({fragment(expression)})"

    # ------------------------------------------------------------ operations
    def _select(self, where: str, op: Any, alias: str) -> None:
        self._need(where, op.columns)
        self._wrap(", ".join(quote(c) for c in op.columns), alias)
        self.lineage = {c: self.lineage[c] for c in op.columns}

    def _rename(self, where: str, op: Any, alias: str) -> None:
        self._need(where, list(op.columns))
        parts = [
            f"{quote(c)} AS {quote(op.columns[c])}" if c in op.columns else quote(c) for c in self.columns
        ]
        self._wrap(", ".join(parts), alias)
        self.lineage = {op.columns.get(c, c): self.lineage[c] for c in self.columns}

    def _cast(self, where: str, op: Any, alias: str) -> None:
        self._need(where, list(op.columns))
        types = {c: self.box.parse_type(t, f"{self.key}.columns.{c}") for c, t in op.columns.items()}
        parts = [
            f"CAST({quote(c)} AS {types[c]}) AS {quote(c)}" if c in types else quote(c) for c in self.columns
        ]
        self._wrap(", ".join(parts), alias)

    def _filter(self, where: str, op: Any, alias: str) -> None:
        self._wrap("*", alias, f" WHERE {self._expression('condition', op.condition)}")
        self._mark("filtered")

    def _derive(self, where: str, op: Any, alias: str) -> None:
        sources = self._sources(op.expression)
        expression = self._expression("expression", op.expression)
        if op.column in self.columns:
            self._wrap(f"* REPLACE ({expression} AS {quote(op.column)})", alias)
        else:
            self._wrap(f"*, {expression} AS {quote(op.column)}", alias)
        self.lineage[op.column] = sources
        self._mark("derived")

    def _aggregate(self, where: str, op: Any, alias: str) -> None:
        self._need(where, op.group_by)
        parts = [quote(g) for g in op.group_by]
        parts += [
            f"{self._expression(f'aggregations.{name}', expression)} AS {quote(name)}"
            for name, expression in op.aggregations.items()
        ]
        group = f" GROUP BY {', '.join(quote(g) for g in op.group_by)}" if op.group_by else ""
        lineage = {g: self.lineage[g] for g in op.group_by}
        lineage.update({name: self._sources(expr) for name, expr in op.aggregations.items()})
        self._wrap(", ".join(parts), alias, group)
        self.lineage = lineage
        self._mark("aggregated")

    def _deduplicate(self, where: str, op: Any, alias: str) -> None:
        if not op.columns:
            self.sql = f"SELECT DISTINCT * FROM ({self.sql}) AS {alias}"
        else:
            self._need(where, op.columns)
            # An ORDER BY list is not one expression; the whole statement is checked after (apply).
            order = f" ORDER BY {fragment(op.order_by)}" if op.order_by else ""
            partition = ", ".join(quote(c) for c in op.columns)
            self._wrap("*", alias, f" QUALIFY row_number() OVER (PARTITION BY {partition}{order}) = 1")
        self._mark("filtered")

    def _join(self, where: str, op: Any, alias: str) -> None:
        other = self.inputs.get(op.dataset)
        if other is None:
            raise StepFailure(f"{where}: dataset {op.dataset!r} is not an input of this step")
        self._need(where, op.on)
        missing = [c for c in op.on if c not in other]
        if missing:
            raise StepFailure(f"{where}: join column(s) {missing} are not in dataset {op.dataset!r}")
        parts = [quote(c) for c in op.on]  # USING merges the keys (coalesced for outer joins)
        lineage = {c: sorted({*self.lineage[c], f"{op.dataset}.{c}"}) for c in op.on}
        for column in self.columns:
            if column not in op.on:
                parts.append(f"l.{quote(column)}")
                lineage[column] = self.lineage[column]
        for column in other:
            if column in op.on:
                continue
            name = column if column not in lineage else f"{op.dataset}_{column}"
            parts.append(f"r.{quote(column)} AS {quote(name)}")
            lineage[name] = [f"{op.dataset}.{column}"]
        self.sql = (
            f"SELECT {', '.join(parts)} FROM ({self.sql}) AS l {op.how.upper()} JOIN {quote(op.dataset)} AS r "
            f"USING ({', '.join(quote(c) for c in op.on)})"
        )
        self.lineage = lineage
        self._mark("derived")


def sql_relationship(sql: str, output_columns: list[str], inputs: dict[str, list[str]]) -> str:
    """A best guess for free SQL: aggregated, derived (new columns), filtered, or direct."""
    text = re.sub(r"'[^']*'", "''", sql.lower())
    if re.search(r"\bgroup\s+by\b", text) or re.search(r"\b(count|sum|avg|min|max)\s*\(", text):
        return "aggregated"
    known = {c for cols in inputs.values() for c in cols}
    if any(c not in known for c in output_columns) or re.search(r"\bjoin\b", text):
        return "derived"
    if re.search(r"\b(where|qualify|distinct|limit|having)\b", text):
        return "filtered"
    return "direct"
