"""The locked DuckDB connection transforms and checks run in, and the checks every tenant SQL fragment passes.

Tenant SQL is hostile input (docs/security.md, "DuckDB SQL"). The connection is opened with external access
off (no file, no URL, no ATTACH, no INSTALL/LOAD), extension autoloading off, Python replacement scans off
(a query cannot read a Python variable by naming it), memory, threads and spill disk bounded by settings
(and the process's heap capped while it is open: steps/memcap.py), and its configuration locked, so no
statement can undo any of it. The step's inputs are registered Arrow datasets (scanned lazily, never loaded
whole). Before anything runs, each SQL text is parsed by DuckDB itself: exactly
one SELECT; only the step's inputs (and the query's own CTEs) as tables; no introspection or side-effect
functions; table functions from a short list. A timer interrupts the connection at the wall-clock limit.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import threading
from collections.abc import Iterator
from typing import Any

from airflow_plugin.steps.memcap import HeapCap
from django_etl import conf
from django_etl.errors import StepFailure, first_line

# Table functions a query may use in FROM; every other one (read_*, glob, query, duckdb_*, checkpoint,
# arrow_scan with raw pointers...) is refused before the query runs.
TABLE_FUNCTIONS = frozenset({"range", "generate_series", "unnest", "json_each", "json_tree", "repeat"})
# Scalar functions that reveal the connection's settings or state rather than compute on data.
HIDDEN_FUNCTIONS = frozenset({"current_setting", "getvariable", "current_query", "write_log"})
HIDDEN_PREFIXES = ("duckdb_", "pragma_")


class SqlBox:
    """One locked DuckDB connection for one step; use as a context manager (closing removes its spill folder)."""

    def __init__(self, step_name: str, *, timeout: float | None = None) -> None:
        import duckdb

        self.step_name = step_name
        self.timeout = float(conf.value("ETL_DUCKDB_TIMEOUT") if timeout is None else timeout)
        self.tables: set[str] = set()
        self.expired = False
        self._temp = tempfile.mkdtemp(prefix="etl-duckdb-")
        self.con = duckdb.connect(config=connection_config(self._temp))
        # memory_limit does not count every allocation (repeat('a', 10**9)): the process's heap is capped too.
        self._heap = HeapCap()
        self._heap.acquire()
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._watcher: threading.Thread | None = None
        if self.timeout > 0:
            self._watcher = threading.Thread(
                target=self._watch, name=f"duckdb-timeout-{step_name}", daemon=True
            )
            self._watcher.start()

    # ------------------------------------------------------------ lifetime
    def __enter__(self) -> SqlBox:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def close(self) -> None:
        try:
            with self._lock:
                self._done.set()
                self.con.close()
        finally:
            self._heap.release()  # the process's own limit comes back whatever closing raised
            shutil.rmtree(self._temp, ignore_errors=True)

    def _watch(self) -> None:
        if self._done.wait(self.timeout):
            return
        self.expired = True
        # Interrupt until the step gives up: an interrupt that lands between two queries would be lost.
        while True:
            with self._lock:
                if self._done.is_set():
                    return
                self.con.interrupt()
            if self._done.wait(0.05):
                return

    def timeout_error(self) -> StepFailure:
        return StepFailure(
            f"the SQL of step {self.step_name!r} ran past its time limit of {self.timeout:g} s "
            "(ETL_DUCKDB_TIMEOUT) and was interrupted"
        )

    def raise_if_expired(self) -> None:
        if self.expired:
            raise self.timeout_error()

    def memory_error(self, exc: BaseException, details: dict[str, Any], key: str) -> StepFailure | None:
        """DuckDB hit its memory limit: the step's error, and ``details["duckdb_out_of_memory"]`` (its alert)."""
        import duckdb

        if not isinstance(exc, duckdb.OutOfMemoryException):
            return None
        limit = conf.value("ETL_DUCKDB_MEMORY_LIMIT")
        # DuckDB's own hint suggests SET statements; the connection is locked, so name the setting instead.
        details["duckdb_out_of_memory"] = {"memory_limit": limit, "error": first_line(exc), "key": key}
        return StepFailure(
            f"{key}: DuckDB ran out of memory at its limit of {limit} ({first_line(exc)}); raise "
            "ETL_DUCKDB_MEMORY_LIMIT or reduce what the step holds at once (fewer columns, a narrower join)"
        )

    # ------------------------------------------------------------ inputs
    def register(self, name: str, dataset: Any) -> None:
        """An Arrow dataset (or table, or reader) as the table ``name``: scanned lazily by DuckDB."""
        self.con.register(name, dataset)
        self.tables.add(name.lower())

    # ------------------------------------------------------------ running
    def sql(self, query: str, params: list | None = None):
        """Run an SQL text the platform built (after :meth:`check_select` on it); returns a DuckDB relation."""
        self.raise_if_expired()
        return self.con.sql(query, params=params) if params else self.con.sql(query)

    def fetch(self, query: str, params: list | None = None) -> list[tuple]:
        self.raise_if_expired()
        return self.con.execute(query, params or []).fetchall()

    def columns(self, query: str, params: list | None = None) -> list[str]:
        """The output columns of a query without running it over the data."""
        self.raise_if_expired()
        return list(self.con.sql(f"SELECT * FROM (\n{query}\n) AS etl_probe LIMIT 0", params=params).columns)

    def batches(self, reader: Any) -> Iterator[Any]:
        """The batches of a DuckDB Arrow reader, stopping at the time limit between batches too."""
        for batch in reader:
            self.raise_if_expired()
            yield batch

    # ------------------------------------------------------------ checks
    def check_select(self, sql: str, key: str) -> str:
        """``sql`` if it is one SELECT over this step's tables only; StepFailure naming ``key`` otherwise."""
        import duckdb

        text = sql.strip()
        while text.endswith(";"):
            text = text[:-1].rstrip()
        try:
            statements = self.con.extract_statements(text)
        except duckdb.Error as exc:
            raise StepFailure(f"{key}: {first_line(exc)}") from None
        if len(statements) != 1:
            raise StepFailure(f"{key}: must be one SELECT statement, found {len(statements)} statements")
        kind = statements[0].type
        if kind != duckdb.StatementType.SELECT:
            raise StepFailure(f"{key}: must be a SELECT statement, not {kind.name}")
        for problem in self._tree_problems(text):
            raise StepFailure(f"{key}: {problem}")
        return text

    def check_expression(self, expression: str, key: str) -> str:
        """``expression`` if DuckDB parses it as one SQL expression (not a clause, not a statement)."""
        import duckdb

        try:
            duckdb.SQLExpression(expression)
        except (duckdb.Error, ValueError) as exc:
            raise StepFailure(f"{key}: not an SQL expression: {first_line(exc)}") from None
        return expression

    def parse_type(self, type_name: str, key: str) -> str:
        """A type name as DuckDB writes it (DECIMAL(12,2), VARCHAR[]...); StepFailure if it is not one type."""
        import duckdb

        if not isinstance(type_name, str) or not type_name.strip() or len(type_name) > 200:
            raise StepFailure(f"{key}: {type_name!r} is not a DuckDB type")
        try:
            parsed = str(self.con.sqltype(type_name.strip()))
        except (duckdb.Error, ValueError, TypeError) as exc:
            raise StepFailure(f"{key}: {type_name!r} is not a DuckDB type ({first_line(exc)})") from None
        # The rendering goes into SQL: refuse anything DuckDB would print back with a statement separator.
        if ";" in parsed or "--" in parsed or "/*" in parsed:
            raise StepFailure(f"{key}: {type_name!r} is not a DuckDB type")
        return parsed

    def _tree_problems(self, sql: str) -> Iterator[str]:
        rows = self.con.execute("SELECT json_serialize_sql(?)", [sql]).fetchall()
        tree = json.loads(rows[0][0])
        if tree.get("error"):
            yield f"cannot be checked: {tree.get('error_message') or 'unsupported SQL'} (PIVOT is not supported)"
            return
        yield from _walk(tree.get("statements", []), frozenset(self.tables), in_table_function=False)


def connection_config(temp_directory: str) -> dict[str, Any]:
    """The settings every connection opens with; ``lock_configuration`` last, so nothing can change them."""
    return {
        "enable_external_access": False,
        "autoinstall_known_extensions": False,
        "autoload_known_extensions": False,
        "python_enable_replacements": False,
        "memory_limit": conf.value("ETL_DUCKDB_MEMORY_LIMIT"),
        "threads": int(conf.value("ETL_DUCKDB_THREADS")),
        "temp_directory": temp_directory,
        "max_temp_directory_size": conf.value("ETL_DUCKDB_MAX_TEMP_SIZE"),
        "preserve_insertion_order": True,
        "lock_configuration": True,
    }


def _walk(node: Any, scope: frozenset[str], *, in_table_function: bool) -> Iterator[str]:
    """Problems in a json_serialize_sql tree: tables outside ``scope``, functions outside the rules."""
    if isinstance(node, list):
        for item in node:
            yield from _walk(item, scope, in_table_function=in_table_function)
        return
    if not isinstance(node, dict):
        return
    ctes = node.get("cte_map")
    if isinstance(ctes, dict):  # a WITH clause: its names are tables inside this node (recursive ones too)
        scope = scope | {str(entry.get("key", "")).lower() for entry in ctes.get("map", [])}
    if node.get("type") == "BASE_TABLE":
        yield from _table_problems(node, scope)
    if node.get("type") == "SHOW_REF" and not node.get("query"):
        # SHOW <setting> reads a setting as current_setting() would (SHOW temp_directory, SHOW secret_directory);
        # SHOW TABLES / SHOW ALL TABLES / SHOW databases list the catalog. DESCRIBE and SUMMARIZE of a table or
        # a query carry that query, which is checked as any other.
        shown = str(node.get("table_name") or node.get("schema_name") or "").strip('"')
        yield f"SHOW {shown}: reads a setting or the catalog, not data (DESCRIBE or SUMMARIZE a query instead)"
    if "function_name" in node:
        yield from _function_problems(node, in_table_function)
    for key, value in node.items():
        if isinstance(value, dict | list):
            table_function = node.get("type") == "TABLE_FUNCTION" and key == "function"
            yield from _walk(value, scope, in_table_function=table_function)


def _table_problems(node: dict[str, Any], scope: frozenset[str]) -> Iterator[str]:
    name = str(node.get("table_name", ""))
    if node.get("catalog_name") or node.get("schema_name"):
        qualified = ".".join(p for p in (node.get("catalog_name"), node.get("schema_name"), name) if p)
        yield f"table {qualified!r}: refer to the step's datasets by their plain name"
    elif name.lower() not in scope:
        known = ", ".join(sorted(scope)) or "none"
        yield f"table {name!r} is not an input of this step (tables: {known})"


def _function_problems(node: dict[str, Any], in_table_function: bool) -> Iterator[str]:
    name = str(node.get("function_name", ""))
    lowered = name.lower()
    if node.get("catalog") or node.get("schema"):
        yield f"function {name!r}: call functions by their plain name"
    elif in_table_function and lowered not in TABLE_FUNCTIONS:
        yield f"table function {name!r} is not allowed (allowed: {', '.join(sorted(TABLE_FUNCTIONS))})"
    elif lowered in HIDDEN_FUNCTIONS or lowered.startswith(HIDDEN_PREFIXES):
        yield f"function {name!r} is not allowed: it inspects the connection, not the data"


def quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def fragment(text: str) -> str:
    """A user fragment on lines of its own, so a trailing ``--`` comment cannot swallow the SQL around it."""
    return f"\n{text}\n"


__all__ = ["SqlBox", "connection_config", "fragment", "quote"]
