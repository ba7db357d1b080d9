"""Load: hand a staged dataset to the target connector's adapter (database table, file or object), one call.

Two guards stand before the target: a ``replace`` of zero rows is refused unless ``allow_empty`` (an empty
extract must not empty a table), and a database target whose columns differ from the staged ones meets
``on_schema_change`` (``django_etl/dataplane/drift.py``). Both leave a failed check in the manifest, which
write-back raises as a DATA_QUALITY alert naming the target and the columns.
"""

from __future__ import annotations

from typing import Any

from airflow_plugin.steps.context import StepFailure, StepRun
from django_etl.dataplane import LoadRequest
from django_etl.dataplane.drift import SchemaChangeError


def run(step: StepRun) -> None:
    config = step.config
    ref = step.single_input(config.input)
    adapter = step.adapter(config.connector)
    step.result.relationship = "direct"
    step.result.column_mapping = {f["name"]: [f"{ref['dataset']}.{f['name']}"] for f in ref.get("schema", [])}
    reader = step.staging.reader(ref["uri"])
    target = config.table or config.path or "the target"
    if not reader.count_rows():
        if config.mode == "replace" and not config.allow_empty:
            check = empty_replace_check(target, ref["dataset"])
            step.result.checks.append(check)
            raise StepFailure(check["message"])
        step.log.info("loading zero rows of %r into %r (mode %s)", ref["dataset"], target, config.mode)
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
        on_schema_change=config.on_schema_change,
    )
    try:
        written = adapter.load(request, reader)
    except SchemaChangeError as exc:
        step.result.checks.append(exc.changes.as_check(failed=True))
        raise
    except Exception:
        if reader.schema_changes:  # met, then the load failed: nothing of it was committed
            step.result.checks.append(reader.schema_changes.as_check(failed=True, rolled_back=True))
        raise
    if reader.schema_changes:
        check = reader.schema_changes.as_check(failed=False)
        step.log.warning("%s", check["message"])
        step.result.checks.append(check)
    if written.skipped:
        step.log.info("nothing to do: %s", written.skipped)
        step.result.details["skipped"] = written.skipped
        return
    schema = [{"name": f.name, "type": str(f.type)} for f in reader.schema]  # what the target received
    step.result.add_target(written.target, written.uri, written.rows, schema)


def empty_replace_check(target: str, dataset: str) -> dict[str, Any]:
    """The failed check of a refused zero-row replace (write-back's DATA_QUALITY alert)."""
    return {
        "name": f"non_empty_replace({target})",
        "check": "allow_empty",
        "severity": "error",
        "passed": False,
        "failing_count": 0,
        "message": (
            f"refused to replace {target!r} with zero rows: dataset {dataset!r} is empty, and a 'replace' "
            "would delete every row of the target; nothing was changed (set 'allow_empty': true when an "
            "empty target is what you want)"
        ),
    }
