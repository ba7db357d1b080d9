"""Load: write a staged dataset to a database (PostgreSQL COPY, SQLite), a file or an object store."""

from __future__ import annotations

from airflow_plugin.steps.context import StepFailure, StepRun

FILE_MODES = ("append", "replace")


def run(step: StepRun) -> None:
    config = step.config
    ref = step.single_input(config.input)
    adapter = step.adapter(config.connector)
    step.result.relationship = "direct"
    step.result.column_mapping = {f["name"]: [f"{ref['dataset']}.{f['name']}"] for f in ref.get("schema", [])}
    if adapter.connector_type == "database":
        if adapter.config.get("engine") == "postgresql":
            from airflow_plugin.steps import load_postgres

            load_postgres.load(step, adapter, ref)
        else:
            from airflow_plugin.steps import load_sqlite

            load_sqlite.load(step, adapter, ref)
        return
    # Files and objects: the path (templated per run, e.g. with {{ ds }}) is written whole or not at all,
    # so a re-run replaces the same file instead of adding a second copy.
    if config.mode not in FILE_MODES:
        raise StepFailure(f"mode {config.mode!r} applies to database targets; files take append or replace")
    if not config.path:
        raise StepFailure(f"a {adapter.connector_type} load needs 'path'")
    dataset = step.staging.reader(ref["uri"])
    rows = adapter.write(config.path, dataset.to_batches(batch_size=65_536), dataset.schema, config.format)
    step.result.add_target(
        config.path,
        f"{adapter.connector_type}://{config.connector}/{config.path}",
        rows,
        ref.get("schema", []),
    )
