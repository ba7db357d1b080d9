"""Validate: declarative data-quality checks over a staged dataset in a locked DuckDB; errors fail without retry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from airflow_plugin.steps.context import StepFailure, StepRun
from airflow_plugin.steps.sqlbox import SqlBox, fragment, quote
from django_etl.errors import first_line

SAMPLE_KEYS = 10


def run(step: StepRun) -> None:
    import duckdb

    config = step.config
    ref = step.single_input(config.input)
    with SqlBox(step.name) as box:
        box.register("data", step.staging.open_dataset(ref["uri"]))
        columns = box.columns("SELECT * FROM data")
        missing_keys = [k for k in config.key_columns if k not in columns]
        if missing_keys:
            raise StepFailure(f"config.key_columns: {missing_keys} are not in dataset {ref['dataset']!r}")
        taken: set[str] = set()
        for index, check in enumerate(config.checks, start=1):
            name = check.name or default_check_name(check, index, taken)
            taken.add(name)
            try:
                passed, failing, keys, message = evaluate(
                    box, check, index, config.key_columns, columns, step
                )
            except Exception as exc:
                if box.expired:
                    raise box.timeout_error() from None
                memory = box.memory_error(exc, step.result.details, f"config.checks[{index - 1}]")
                if memory is not None:
                    raise memory from None
                if isinstance(exc, duckdb.Error):
                    raise StepFailure(
                        f"config.checks[{index - 1}]: check {name!r} could not run: {first_line(exc)}"
                    ) from None
                raise
            step.result.checks.append(
                {
                    "name": name,
                    "check": check.check,
                    "severity": check.severity,
                    "passed": passed,
                    "failing_count": failing,
                    "sample_keys": keys,
                    "message": message,
                }
            )
            if not passed:
                step.log.warning("check %s (%s) failed: %s", name, check.severity, message)
    step.result.relationship = "direct"
    if step.step.get("output"):  # an alias of the checked data, not a copy
        step.result.outputs.append({**ref, "dataset": step.step["output"]})
    errors = [c for c in step.result.checks if not c["passed"] and c["severity"] == "error"]
    if errors:
        described = "; ".join(f"{c['name']}: {c['message']}" for c in errors)
        raise StepFailure(f"{len(errors)} data-quality check(s) failed: {described}")
    # The checked rows are handed on unchanged (later steps read the same staged dataset).
    step.result.rows_out = step.result.rows_in


def evaluate(box: SqlBox, check: Any, index: int, key_columns: list[str], columns: list[str], step: StepRun):
    """(passed, failing_count, sample_keys, message) of one check."""
    kind = check.check
    if kind == "row_count":
        count = box.fetch("SELECT count(*) FROM data")[0][0]
        low_ok = check.min is None or count >= check.min
        high_ok = check.max is None or count <= check.max
        bounds = (
            f"[{check.min if check.min is not None else '-'}, {check.max if check.max is not None else '-'}]"
        )
        return low_ok and high_ok, 0 if low_ok and high_ok else 1, [], f"{count} rows, expected {bounds}"
    if kind == "custom_sql":
        query = box.check_select(check.sql, f"config.checks[{index - 1}].sql")
        return failing_rows(box, query, key_columns, "rows returned by the custom SQL")
    needed = list(getattr(check, "columns", None) or [check.column])
    unknown = [c for c in needed if c not in columns]
    if unknown:
        raise StepFailure(
            f"config.checks[{index - 1}]: check {check.name or kind!r}: unknown column(s) {unknown}; "
            f"available: {columns}"
        )
    if kind == "not_null":
        condition = " OR ".join(f"{quote(c)} IS NULL" for c in check.columns)
        return failing_where(box, condition, key_columns, f"null in {', '.join(check.columns)}")
    if kind == "unique":
        keys = ", ".join(quote(c) for c in check.columns)
        failing = box.fetch(
            f"SELECT coalesce(sum(n), 0) FROM (SELECT count(*) AS n FROM data GROUP BY {keys} HAVING count(*) > 1)"
        )[0][0]
        sample = box.fetch(f"SELECT {keys} FROM data GROUP BY {keys} HAVING count(*) > 1 LIMIT {SAMPLE_KEYS}")
        return (
            failing == 0,
            int(failing),
            [jsonable(r) for r in sample],
            f"{failing} rows share a duplicated key",
        )
    column = quote(check.column)
    if kind == "accepted_values":
        values = ", ".join("?" for _ in check.values)
        return failing_where(
            box,
            f"{column} IS NOT NULL AND {column} NOT IN ({values})",
            key_columns,
            f"values of {check.column} outside {check.values}",
            list(check.values),
        )
    if kind == "range":
        parts, params = [], []
        if check.min is not None:
            parts.append(f"{column} < ?")
            params.append(check.min)
        if check.max is not None:
            parts.append(f"{column} > ?")
            params.append(check.max)
        condition = " OR ".join(parts) or "false"
        return failing_where(
            box, condition, key_columns, f"{check.column} outside [{check.min}, {check.max}]", params
        )
    if kind == "regex":
        return failing_where(
            box,
            f"{column} IS NOT NULL AND NOT regexp_matches(CAST({column} AS VARCHAR), ?)",
            key_columns,
            f"{check.column} not matching {check.pattern!r}",
            [check.pattern],
        )
    if kind == "freshness":
        # Relative to the end of the run's data interval (a backfill checks its own period), else now.
        reference = step.data_interval_end or datetime.now(UTC)
        newest = box.fetch(f"SELECT max(CAST({column} AS TIMESTAMPTZ)) FROM data")[0][0]
        limit = reference - timedelta(hours=check.max_age_hours)
        passed = newest is not None and newest >= limit
        return passed, 0 if passed else 1, [], f"newest {check.column} is {newest}, must be after {limit}"
    raise StepFailure(f"unknown check {kind!r}")


def failing_where(box: SqlBox, condition: str, key_columns: list[str], what: str, params: list | None = None):
    return failing_rows(box, f"SELECT * FROM data WHERE {condition}", key_columns, what, params)


def failing_rows(box: SqlBox, query: str, key_columns: list[str], what: str, params: list | None = None):
    """``query`` (checked, or built by the platform) sits on lines of its own inside each wrapper."""
    inner = fragment(query)
    failing = box.fetch(f"SELECT count(*) FROM ({inner})", params)[0][0]
    sample: list[Any] = []
    if failing and key_columns:
        result_columns = box.columns(query, params)
        keys = [k for k in key_columns if k in result_columns]
        if keys:  # only the key columns, never whole rows
            rows = box.fetch(
                f"SELECT {', '.join(quote(k) for k in keys)} FROM ({inner}) LIMIT {SAMPLE_KEYS}", params
            )
            sample = [jsonable(r) for r in rows]
    return failing == 0, int(failing), sample, f"{failing} {what}"


def jsonable(row: tuple) -> Any:
    values = [
        v.isoformat() if hasattr(v, "isoformat") else v if isinstance(v, int | float | str | None) else str(v)
        for v in row
    ]
    return values[0] if len(values) == 1 else values


def default_check_name(check, index: int, taken: set[str]) -> str:
    """A readable name for an unnamed check: "unique(order_id)", "row_count"; the position if repeated."""
    columns = getattr(check, "columns", None) or ([check.column] if getattr(check, "column", None) else [])
    name = f"{check.check}({', '.join(columns)})" if columns else check.check
    return name if name not in taken else f"{name}#{index}"
