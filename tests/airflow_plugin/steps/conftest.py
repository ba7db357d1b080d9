"""Run step implementations directly on real systems: a StepRun on a per-test staging folder."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

import pytest


@pytest.fixture
def staging(tmp_path):
    from django_etl.dataplane.staging import Staging

    return Staging(str(tmp_path / "staging"))


@pytest.fixture
def make_run(staging):
    """make_run(step_type, config, connectors=..., inputs=..., output=..., task_id=..., run_id=..., interval=...)."""
    from airflow_plugin.steps.context import StepRun
    from django_etl.stepkinds import STEP_KINDS

    def make(
        step_type: str,
        config: dict[str, Any],
        *,
        connectors: dict[str, dict[str, Any]] | None = None,
        inputs: list[str] = (),
        output: str | None = None,
        task_id: str | None = None,
        run_id: str = "scheduled__2025-01-02T00:00:00+00:00",
        interval: tuple[datetime, datetime] | None = None,
    ) -> StepRun:
        task_id = task_id or step_type
        step = {
            "id": f"id-{task_id}",
            "name": task_id,
            "task_id": task_id,
            "step_type": step_type,
            "config": config,
            "inputs": list(inputs),
            "output": output,
        }
        start, end = interval or (None, None)
        return StepRun(
            step=step,
            config=STEP_KINDS[step_type].schema.model_validate(config),
            dag_id="pipeline_steps_test",
            run_id=run_id,
            task_id=task_id,
            staging=staging,
            connectors=connectors or {},
            data_interval_start=start,
            data_interval_end=end,
            pipeline={"id": "p-1", "name": "Orders"},
        )

    return make


@pytest.fixture
def execute():
    """Run a StepRun's implementation and write its manifest as the runtime does; returns the manifest."""
    from airflow_plugin.runtime import build_manifest
    from django_etl.stepkinds import load_implementation, step_kind

    def run(step_run) -> dict[str, Any]:
        started = time.monotonic()
        error = None
        try:
            load_implementation(step_kind(step_run.step["step_type"]))(step_run)
        except Exception as exc:
            error = str(exc)
            raise
        finally:
            manifest = build_manifest(
                step_run.step, step_run.task_id, step_run.step["step_type"], step_run.result, error, started
            )
            step_run.staging.write_manifest(step_run.dag_id, step_run.run_id, step_run.task_id, manifest)
        return manifest

    return run


@pytest.fixture
def file_root(tmp_path, settings):
    root = tmp_path / "files"
    root.mkdir()
    settings.ETL_FILE_ROOTS = [str(root)]
    return root


def file_runtime(root, fmt: str = "csv") -> dict[str, Any]:
    return {"type": "file", "name": "landing", "config": {"root": str(root), "format": fmt}, "secret": {}}
