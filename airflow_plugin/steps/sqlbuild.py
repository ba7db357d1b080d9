"""Compile the transform's declarative operations to DuckDB SQL, tracking column lineage as it goes.

Every tenant fragment (a condition, an expression, an ORDER BY, a type) is checked on its own by DuckDB's
parser, placed on lines of its own, and the statement it lands in is checked again as one SELECT over the
step's inputs before DuckDB binds it (airflow_plugin/steps/sqlbox.py).

Column lineage (``airflow_plugin.columnlineage`` shape): the operations say it themselves; free SQL is read by
sqlglot's DuckDB dialect, with the staged inputs' schemas so that ``*`` expands to real columns. sqlglot only
parses here, after DuckDB's own checks passed; it never runs anything.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from airflow_plugin import columnlineage
from airflow_plugin.columnlineage import RANK, Sources, raise_to, strongest
from airflow_plugin.steps.context import StepFailure
from airflow_plugin.steps.sqlbox import fragment, quote
from django_etl.errors import first_line

if TYPE_CHECKING:
    from airflow_plugin.steps.sqlbox import SqlBox

IDENTIFIER = re.compile(r'"((?:[^"]|"")+)"|\b([A-Za-z_][A-Za-z0-9_]*)\b')
# Past this size a query's column lineage is not worked out (parsing stays cheap whatever tenants write).
MAX_LINEAGE_SQL = 200_000


def referenced(expression: str, columns: list[str]) -> list[str]:
    """The known columns an SQL expression mentions: its column references, as DuckDB's dialect reads them.

    Words inside string literals are not columns; should sqlglot not read the expression, every identifier
    that names a known column counts (it may then over-report, never miss one).
    """
    import sqlglot
    from sqlglot import exp

    try:
        tree = sqlglot.parse_one(expression, read="duckdb")
        names = [column.name for column in tree.find_all(exp.Column)]
    except Exception:  # sqlglot's errors, or a recursion limit on absurd nesting
        names = [
            quoted.replace('""', '"') if quoted else bare for quoted, bare in IDENTIFIER.findall(expression)
        ]
    return list(dict.fromkeys(name for name in names if name in columns))


class OperationCompiler:
    """Wraps each operation around the previous query; knows the columns and their sources at each stage."""

    def __init__(self, first: str, inputs: dict[str, list[str]], box: SqlBox) -> None:
        self.inputs = inputs
        self.box = box
        self.sql = f"SELECT * FROM {quote(first)}"
        self.columns = list(inputs[first])
        self.lineage: dict[str, Sources] = {c: {(first, c): "direct"} for c in self.columns}
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
        """Output column -> ["dataset.column", ...] (the manifest's ``column_mapping``)."""
        return columnlineage.flat_mapping(self.column_lineage())

    def column_lineage(self) -> dict:
        """The manifest's ``column_lineage``: every output column's sources and what happened to them."""
        return columnlineage.document({column: self.lineage.get(column, {}) for column in self.columns})

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

    def _sources(self, expression: str, transformation: str) -> Sources:
        """The sources of the columns ``expression`` mentions, raised to ``transformation``."""
        sources: Sources = {}
        for column in referenced(expression, self.columns):
            for source, kind in self.lineage.get(column, {}).items():
                sources[source] = strongest(sources.get(source, kind), kind, transformation)
        return sources

    def _raise_all(self, transformation: str) -> None:
        self.lineage = {c: raise_to(sources, transformation) for c, sources in self.lineage.items()}

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
        for column in types:
            self.lineage[column] = raise_to(self.lineage[column], "derived")

    def _filter(self, where: str, op: Any, alias: str) -> None:
        self._wrap("*", alias, f" WHERE {self._expression('condition', op.condition)}")
        self._raise_all("filtered")
        self._mark("filtered")

    def _derive(self, where: str, op: Any, alias: str) -> None:
        sources = self._sources(op.expression, "derived")
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
        # A group key keeps its values (OpenLineage calls it identity); each aggregation is aggregated.
        lineage = {g: self.lineage[g] for g in op.group_by}
        lineage.update({name: self._sources(expr, "aggregated") for name, expr in op.aggregations.items()})
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
        self._raise_all("filtered")
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
        # USING merges the keys: each key column holds the value of both sides.
        lineage = {c: {**self.lineage[c], (op.dataset, c): "direct"} for c in op.on}
        for column in self.columns:
            if column not in op.on:
                parts.append(f"l.{quote(column)}")
                lineage[column] = self.lineage[column]
        for column in other:
            if column in op.on:
                continue
            name = column if column not in lineage else f"{op.dataset}_{column}"
            parts.append(f"r.{quote(column)} AS {quote(name)}")
            lineage[name] = {(op.dataset, column): "direct"}
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


# Clauses of a SELECT that keep only some rows: a column copied through one is "filtered".
_ROW_FILTERS = ("where", "having", "qualify", "distinct", "limit")


def sql_column_lineage(sql: str, inputs: dict[str, list[str]], output_columns: list[str]) -> dict[str, Any]:
    """The column lineage of a free SQL transform over ``inputs`` (dataset -> its staged columns).

    ``output_columns`` are DuckDB's names for the result's columns, matched to the query's projections by
    position (DuckDB and sqlglot name unnamed expressions differently). Whatever sqlglot cannot trace to an
    input column is reported unknown, never guessed.
    """
    if len(sql) > MAX_LINEAGE_SQL:
        return columnlineage.not_known(f"the SQL is longer than {MAX_LINEAGE_SQL} characters")
    try:
        query, scope = _qualified(sql, inputs)
    except Exception as exc:  # sqlglot's parse or qualify errors, RecursionError on absurd nesting
        return columnlineage.not_known(f"sqlglot could not read the SQL: {first_line(exc)}")
    projections = [select.alias_or_name for select in query.selects]
    if len(projections) != len(output_columns):
        return columnlineage.not_known(
            f"the query's {len(projections)} projections do not match its {len(output_columns)} output columns"
        )
    columns: dict[str, Sources] = {}
    unknown: list[str] = []
    for output, projection in zip(output_columns, projections, strict=True):
        try:
            sources = _traced(projection, query, scope, inputs)
        except Exception:
            sources = None
        if sources is None:
            unknown.append(output)
        columns[output] = sources or {}
    reason = None
    if unknown:
        reason = (
            f"not traced to the step's inputs: {', '.join(unknown)} (a table function, COLUMNS(), "
            "or SQL sqlglot cannot follow)"
        )
    return columnlineage.document(columns, unknown=unknown, reason=reason)


def _qualified(sql: str, inputs: dict[str, list[str]]):
    """The query parsed by sqlglot's DuckDB dialect, every column qualified and every star expanded."""
    import sqlglot
    from sqlglot.optimizer.qualify import qualify
    from sqlglot.optimizer.scope import build_scope

    # Types do not matter for lineage; the names do (they expand "*").
    schema = {name: {column: "UNKNOWN" for column in columns} for name, columns in inputs.items()}
    tree = sqlglot.parse_one(sql, read="duckdb")
    query = qualify(
        tree, schema=schema, dialect="duckdb", validate_qualify_columns=False, quote_identifiers=False
    )
    return query, build_scope(query)


def _schema(inputs: dict[str, list[str]]) -> dict[str, dict[str, str]]:
    # Types do not matter for lineage; the names do (they expand "*").
    return {name: {column: "UNKNOWN" for column in columns} for name, columns in inputs.items()}


def _traced(projection: str, query: Any, scope: Any, inputs: dict[str, list[str]]) -> Sources | None:
    """The input columns one projection reads and how; None when some path ends outside the inputs."""
    from sqlglot.lineage import lineage

    schema = _schema(inputs)
    root = lineage(projection, query, schema, dialect="duckdb", scope=scope, copy=False)
    sources: Sources = {}
    traced = True

    def walk(node: Any, transformation: str) -> None:
        nonlocal traced
        from sqlglot import exp

        if not node.downstream:
            table = node.source if isinstance(node.source, exp.Table) else None
            if table is not None:
                dataset, column = table.name, node.name.rsplit(".", 1)[-1].strip('"')
                if dataset in inputs and column in inputs[dataset]:
                    key = (dataset, column)
                    sources[key] = strongest(sources.get(key, transformation), transformation)
                    return
                traced = False  # a table function, or a column sqlglot could not resolve
            elif any(True for _ in node.expression.find_all(exp.Column)) or _opaque(node.expression):
                traced = False
            return  # a constant: depends on no input column
        step = strongest(transformation, _transformation_at(node))
        for child in node.downstream:
            walk(child, step)

    walk(root, "direct")
    return sources if traced else None


def _transformation_at(node: Any) -> str:
    """What one SELECT level does to the column: aggregates, computes, keeps some rows, or copies it."""
    from sqlglot import exp

    expression = node.expression.unalias() if isinstance(node.expression, exp.Alias) else node.expression
    kind = "direct"
    if isinstance(expression, exp.Column) or _merged_key(expression):
        kind = "direct"
    elif any(True for _ in expression.find_all(exp.AggFunc)):
        kind = "aggregated"
    elif not isinstance(expression, exp.Table):
        kind = "derived"
    select = node.source
    if isinstance(select, exp.Select) and any(select.args.get(clause) for clause in _ROW_FILTERS):
        kind = strongest(kind, "filtered")
    return kind


def _merged_key(expression: Any) -> bool:
    """COALESCE of plain columns: how sqlglot spells the key of a USING join under ``*`` (a copy of one side)."""
    from sqlglot import exp

    return isinstance(expression, exp.Coalesce) and all(
        isinstance(arg, exp.Column) for arg in [expression.this, *expression.expressions]
    )


def _opaque(expression: Any) -> bool:
    """An expression whose inputs sqlglot cannot see (DuckDB's COLUMNS(...) star, for one)."""
    from sqlglot import exp

    for node in expression.walk():
        if isinstance(node, exp.Anonymous) and node.name.lower() == "columns":
            return True
        if isinstance(node, exp.Star) and not isinstance(
            node.parent, exp.AggFunc
        ):  # count(*) reads no column
            return True
    return False
