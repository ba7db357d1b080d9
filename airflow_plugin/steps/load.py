"""Load: hand a staged dataset to the target connector's adapter (database table, file or object), one call."""

from __future__ import annotations

from airflow_plugin.steps.context import StepRun
from django_etl.dataplane import LoadRequest


def run(step: StepRun) -> None:
    config = step.config
    ref = step.single_input(config.input)
    adapter = step.adapter(config.connector)
    step.result.relationship = "direct"
    step.result.column_mapping = {f["name"]: [f"{ref['dataset']}.{f['name']}"] for f in ref.get("schema", [])}
    request = LoadRequest(
        dag_id=step.dag_id,
        run_id=step.run_id,
        task_id=step.task_id,
        mode=config.mode,
        table=config.table,
        path=config.path,
        format=config.format,
        key=tuple(config.key),
        interval_column=config.interval_column,
        create_table=config.create_table,
        data_interval_start=step.data_interval_start,
        data_interval_end=step.data_interval_end,
    )
    written = adapter.load(request, step.staging.reader(ref["uri"]))
    if written.skipped:
        step.log.info("nothing to do: %s", written.skipped)
        step.result.details["skipped"] = written.skipped
        return
    step.result.add_target(written.target, written.uri, written.rows, ref.get("schema", []))
