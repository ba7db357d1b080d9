"""Run one step inside its Airflow task: resolve connectors and secrets, dispatch, write the manifest, report.

Everything heavy is imported here, in the task process, never when a DAG file is parsed.
"""

from __future__ import annotations

import logging
import time
import traceback
from typing import Any

from airflow_plugin import metrics, resources
from airflow_plugin.openlineage import dataset_locations
from airflow_plugin.steps.context import StepResult, StepRun
from django_etl.connectors.secrets import MIN_SECRET_LENGTH, mask, secret_values
from django_etl.dataplane.staging import Staging
from django_etl.errors import StepFailure, StepSkipped
from django_etl.startup import setup_django
from django_etl.stepkinds import load_implementation, step_kind

log = logging.getLogger("airflow.task")


def run_step(operator: Any, context: dict[str, Any]) -> dict[str, Any]:
    """Execute ``operator``'s step; always writes the result manifest; returns dataset references for XCom."""
    started = time.monotonic()
    metrics.reset_peak_memory()
    setup_django()
    step = dict(operator.step)
    step_type = operator.step_type or step.get("step_type", "")
    dag_id = context["dag"].dag_id if context.get("dag") is not None else context["ti"].dag_id
    run_id = context["run_id"]
    staging = Staging()
    try_number = int(getattr(context.get("ti"), "try_number", 0) or 0)
    result = StepResult()
    secrets: list[str] = []
    error: str | None = None
    error_type: str | None = None
    where = f"step {step.get('name') or operator.task_id!r} ({step_type})"
    try:
        # Staged data lives in the organization's own folder, named from the pipeline's row, never a config.
        staging = Staging(organization=organization_of(operator.pipeline))
        record_attempt(staging, dag_id, run_id, operator.task_id, try_number)
        config = parse_config(step_type, operator.render_config(context))  # the template sandbox
        connectors = resolve_connectors(operator.pipeline, step_type, config, secrets)
        result.locations = dataset_locations(step_type, config, connectors)  # for lineage; never secrets
        run = StepRun(
            step=step,
            config=config,
            dag_id=dag_id,
            run_id=run_id,
            task_id=operator.task_id,
            staging=staging,
            connectors=connectors,
            data_interval_start=context.get("data_interval_start"),
            data_interval_end=context.get("data_interval_end"),
            logical_date=context.get("logical_date"),
            pipeline=dict(operator.pipeline),
            result=result,
            log=log,
        )
        load_implementation(step_kind(step_type))(run)
        return {
            "step_id": step.get("id"),
            "outputs": [
                {"dataset": o["dataset"], "uri": o["uri"], "rows": o["rows"]} for o in result.outputs
            ],
        }
    except StepSkipped as exc:
        reason = mask(f"{where}: skipped: {describe(exc)}", secrets)
        log.warning("%s", reason)
        result.details["skipped_because"] = reason
        from airflow.sdk.exceptions import AirflowSkipException

        raise AirflowSkipException(reason) from None
    except Exception as exc:
        error = mask(f"{where}: {describe(exc)}", secrets)
        error_type = type(exc).__name__
        log.error("%s", mask("".join(traceback.format_exception(exc)), secrets))
        raise airflow_error(exc, error) from None
    except BaseException as exc:
        # AirflowTaskTimeout (execution_timeout) and the SIGTERM Airflow sends are BaseExceptions: the try
        # did not succeed, and its manifest must say so and why. Airflow handles them as raised.
        error = mask(f"{where}: {describe(exc)}", secrets)
        error_type = type(exc).__name__
        raise
    finally:
        manifest = build_manifest(step, operator.task_id, step_type, result, error, started)
        manifest["try_number"] = try_number
        manifest["error_type"] = error_type
        manifest["resources"] = resources.task_resources(
            staging.url, manifest["metrics"]["peak_memory_bytes"]
        )
        try:
            staging.write_manifest(dag_id, run_id, operator.task_id, manifest)
        except Exception as write_error:  # the step's own outcome matters more than its manifest
            log.error("could not write the result manifest: %s", mask(str(write_error), secrets))
        log.info("step metrics: %s", manifest["metrics"])


def record_attempt(staging: Staging, dag_id: str, run_id: str, task_id: str, try_number: int) -> None:
    """This try's start (pid, host, memory cgroup, its OOM-kill counter): how the reconciler tells, if the try
    ends without a manifest, whether the kernel killed it for memory (``airflow_plugin.resources``)."""
    try:
        staging.write_attempt(dag_id, run_id, task_id, resources.attempt_record(try_number))
    except Exception as exc:  # the step matters more than this record
        log.warning("could not record the try's start: %s", exc)


def parse_config(step_type: str, rendered: dict[str, Any]) -> Any:
    from pydantic import ValidationError

    schema = step_kind(step_type).schema
    try:
        return schema.model_validate(rendered)
    except ValidationError as exc:
        problems = "; ".join(
            f"config.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors(include_url=False)
        )
        raise StepFailure(f"invalid configuration: {problems}") from None


def resolve_connectors(
    pipeline: dict[str, Any], step_type: str, config: Any, secrets: list[str]
) -> dict[str, dict[str, Any]]:
    """Connector name -> runtime settings (config + decrypted secret); every secret value gets masked."""
    from django_etl.connectors.expiry import refuse_expired
    from django_etl.connectors.models import Connector, CredentialDecryptionError

    names = step_kind(step_type).connector_names(config)
    if not names:
        return {}
    organization_id = organization_of(pipeline)
    found = {
        c.name: c
        for c in Connector.objects.select_related("credential").filter(
            organization_id=organization_id, name__in=names
        )
    }
    resolved = {}
    for name in names:
        connector = found.get(name)
        if connector is None:
            raise StepFailure(f"no connector named {name!r} in the pipeline's organization")
        if not connector.is_active:
            raise StepFailure(f"connector {name!r} is inactive")
        refuse_expired(connector)  # a ConfigurationError: the task fails at once, no retry (issue 12)
        try:
            runtime = connector.runtime_settings()
        except CredentialDecryptionError as exc:
            raise StepFailure(str(exc)) from None
        for value in secret_values(runtime["secret"]):
            secrets.append(value)
            register_with_airflow(value)
        resolved[name] = runtime
    return resolved


def organization_of(pipeline: dict[str, Any]) -> Any:
    """The organization id of the pipeline row (authoritative), else the spec's own organization field."""
    from django_etl.pipelines.models import Pipeline

    row = Pipeline.objects.filter(pk=pipeline.get("id")).values_list("organization_id", flat=True).first()
    if row is not None:
        return row
    if pipeline.get("organization_id"):
        return pipeline["organization_id"]
    organization = pipeline.get("organization")
    if isinstance(organization, dict):
        return organization.get("id")
    return organization


def register_with_airflow(value: str) -> None:
    """Airflow's masker then blanks the value in every log line of this task process.

    Only values of ``secret_values`` come here (the one masking rule: none shorter than MIN_SECRET_LENGTH,
    which would rewrite ordinary text); anything shorter is refused here too, whoever calls.
    """
    from airflow.sdk.log import mask_secret

    if not isinstance(value, str) or len(value) < MIN_SECRET_LENGTH:
        return
    mask_secret(value)


def describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return text if text else type(exc).__name__


def is_retryable(exc: BaseException) -> bool:
    """Network trouble and lock timeouts may clear up; configuration and data errors will not."""
    flag = getattr(exc, "retryable", None)
    if flag is not None:
        return bool(flag)
    try:
        import psycopg

        if isinstance(exc, psycopg.OperationalError):
            return True
        if isinstance(exc, psycopg.Error):
            return False
    except ImportError:  # pragma: no cover - psycopg is a dependency
        pass
    import pyarrow as pa

    if isinstance(exc, pa.ArrowInvalid | pa.ArrowTypeError | ValueError | KeyError | TypeError):
        return False
    return isinstance(exc, OSError | TimeoutError | ConnectionError)


def airflow_error(exc: BaseException, message: str) -> Exception:
    from airflow.sdk.exceptions import AirflowException, AirflowFailException

    return AirflowException(message) if is_retryable(exc) else AirflowFailException(message)


def build_manifest(
    step: dict[str, Any], task_id: str, step_type: str, result: StepResult, error: str | None, started: float
) -> dict[str, Any]:
    duration = time.monotonic() - started
    rows = result.rows_out or result.rows_in
    manifest = {
        "step_id": step.get("id"),
        "task_id": task_id,
        "step_type": step_type,
        "status": "failed" if error else "skipped" if result.details.get("skipped_because") else "success",
        "error": error,
        "metrics": {
            "rows_in": result.rows_in,
            "rows_out": result.rows_out,
            "bytes": result.bytes,
            "duration_seconds": round(duration, 3),
            "rows_per_second": round(rows / duration, 1) if duration > 0 else None,
            "peak_memory_bytes": metrics.peak_memory_bytes(),
        },
        "inputs": result.inputs,
        "outputs": result.outputs,
        "checks": result.checks,
        "column_mapping": result.column_mapping,
        "column_lineage": result.column_lineage,
        "locations": result.locations,
        "relationship": result.relationship,
    }
    if result.watermark is not None:
        manifest["watermark"] = result.watermark
    if result.details:
        manifest["details"] = result.details
    return manifest
