"""Transform: SQL or declarative operations over staged inputs in a locked DuckDB, streamed to a staged output."""

from __future__ import annotations

from airflow_plugin.steps.context import StepFailure, StepRun
from airflow_plugin.steps.sqlbox import SqlBox
from airflow_plugin.steps.sqlbuild import OperationCompiler, sql_column_lineage, sql_relationship
from django_etl.errors import first_line

BATCH_ROWS = 100_000


def register_inputs(step: StepRun, box: SqlBox, names: list[str]) -> dict[str, list[str]]:
    """Each input dataset becomes a table of its name (a lazily scanned Arrow dataset); returns its columns."""
    columns = {}
    for name in names:
        ref = step.input(name)
        box.register(name, step.staging.open_dataset(ref["uri"]))
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
    with SqlBox(step.name) as box:
        try:
            columns = register_inputs(step, box, names)
            if config.sql:
                sql = box.check_select(config.sql, "config.sql")
                output_columns = box.columns(sql)
                step.result.column_lineage = sql_column_lineage(sql, columns, output_columns)
                step.result.column_mapping = same_name_mapping(output_columns, columns)
                step.result.relationship = sql_relationship(sql, output_columns, columns)
            else:
                compiler = OperationCompiler(names[0], columns, box)
                for index, operation in enumerate(config.operations, start=1):
                    compiler.apply(index, operation)
                sql = compiler.sql
                step.result.column_mapping = compiler.mapping()
                step.result.column_lineage = compiler.column_lineage()
                step.result.relationship = compiler.relationship()
            dataset = step.output_name
            reader = box.sql(sql).to_arrow_reader(BATCH_ROWS)  # streams; a DB-API result would copy every row
            info = step.staging.write_dataset(
                step.output_dir(dataset), dataset, box.batches(reader), schema=reader.schema
            )
            step.result.add_output(info)
        except Exception as exc:
            if box.expired:  # whatever the interrupted call raised, the cause is the time limit
                raise box.timeout_error() from None
            if isinstance(exc, StepFailure):
                raise
            key = "config.sql" if config.sql else "config.operations"
            memory = box.memory_error(exc, step.result.details, key)
            if memory is not None:
                raise memory from None
            if isinstance(exc, duckdb.Error):
                raise StepFailure(f"{key}: SQL failed: {first_line(exc)}") from None
            raise


def same_name_mapping(output_columns: list[str], inputs: dict[str, list[str]]) -> dict[str, list[str]]:
    """For free SQL: an output column maps to the input columns of the same name (qualified dataset.column)."""
    mapping = {}
    for column in output_columns:
        mapping[column] = [f"{name}.{column}" for name, cols in inputs.items() if column in cols]
    return mapping
