"""Transform: SQL or declarative operations over staged inputs in DuckDB, streamed to a staged output."""

from __future__ import annotations

import os
import tempfile

from airflow_plugin.steps.context import StepFailure, StepRun
from airflow_plugin.steps.sqlbuild import OperationCompiler, sql_relationship

BATCH_ROWS = 100_000


def connect_duckdb(step: StepRun):
    import duckdb

    con = duckdb.connect()
    # Bounded memory whatever the input size: DuckDB spills to disk beyond this.
    con.execute("SET memory_limit = '512MB'")
    con.execute("SET temp_directory = ?", [os.path.join(tempfile.gettempdir(), "etl-duckdb")])
    con.execute("SET preserve_insertion_order = true")
    return con


def register_inputs(step: StepRun, con, names: list[str]) -> dict[str, list[str]]:
    """Each input dataset becomes a DuckDB view of its name; returns the columns of each."""
    columns = {}
    for name in names:
        ref = step.input(name)
        con.register(name, step.staging.open_dataset(ref["uri"]))
        columns[name] = [f["name"] for f in ref.get("schema", [])]
    return columns


def run(step: StepRun) -> None:
    import duckdb

    config = step.config
    names = list(config.inputs or step.inputs)
    for operation in config.operations:
        if operation.op == "join" and operation.dataset not in names:
            names.append(operation.dataset)
    if not names:
        raise StepFailure("the transform has no input dataset")
    con = connect_duckdb(step)
    try:
        columns = register_inputs(step, con, names)
        if config.sql:
            sql = config.sql.strip().rstrip(";")
            output_columns = describe(con, sql)
            step.result.column_mapping = same_name_mapping(output_columns, columns)
            step.result.relationship = sql_relationship(sql, output_columns, columns)
        else:
            compiler = OperationCompiler(names[0], columns, lambda q: describe(con, q))
            for index, operation in enumerate(config.operations, start=1):
                compiler.apply(index, operation)
            sql = compiler.sql
            step.result.column_mapping = compiler.mapping()
            step.result.relationship = compiler.relationship()
        dataset = step.output_name
        reader = con.sql(sql).to_arrow_reader(BATCH_ROWS)  # streams; a DB-API result would copy every row
        info = step.staging.write_dataset(step.output_dir(dataset), dataset, reader)
        step.result.add_output(info)
    except duckdb.Error as exc:
        raise StepFailure(f"SQL failed: {first_line(exc)}") from None
    finally:
        con.close()


def describe(con, sql: str) -> list[str]:
    """The output columns of a query, without running it over the data."""
    return [column[0] for column in con.execute(f"SELECT * FROM ({sql}) AS etl_probe LIMIT 0").description]


def same_name_mapping(output_columns: list[str], inputs: dict[str, list[str]]) -> dict[str, list[str]]:
    """For free SQL: an output column maps to the input columns of the same name (qualified dataset.column)."""
    mapping = {}
    for column in output_columns:
        mapping[column] = [f"{name}.{column}" for name, cols in inputs.items() if column in cols]
    return mapping


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
