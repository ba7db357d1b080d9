"""Fixtures for the write-back tests: one Airflow metadata DB per session, scripted pipelines run by dag.test()."""

from __future__ import annotations

import os
import runpy
import uuid
from typing import Any

import pytest

# Tests that let the recorder write must name its database alias too (Django refuses unnamed aliases).
RECORDER_DATABASES = ["default", "etl_recorder"]


@pytest.fixture(scope="session", autouse=True)
def recorder_alias(django_db_setup, django_db_blocker):
    """Register the recorder's alias once the default alias points at the test database."""
    from airflow_plugin.writeback import close_connection, setup

    setup()
    yield
    close_connection()  # the test database cannot be dropped while the recorder holds a connection


@pytest.fixture(scope="session")
def airflow_db():
    """Airflow's metadata DB of this test session (SQLite under the session's AIRFLOW_HOME), migrated once."""
    from airflow.utils.db import initdb

    initdb()


@pytest.fixture
def scripted_pipeline(transactional_db, organization, user):
    """Make a Pipeline with steps in Django and the matching scripted DAG spec.

    ``steps``: (name, step_type, upstream names, behaviour, retries). Datasets follow the edges: every step
    writes ``<task_id>_out`` and reads its upstreams' outputs.
    """
    from django_etl.pipelines.models import Pipeline, PipelineStep
    from django_etl.pipelines.naming import dag_id_for, task_id_for

    def make(steps: list[tuple[str, str, list[str], str, int]], name: str = "Orders nightly", **extra: Any):
        pipeline = Pipeline.objects.create(
            name=name, organization=organization, created_by=user, status="active", config={"schedule": None}
        )
        entries = []
        for position, (step_name, step_type, upstream, behaviour, retries) in enumerate(steps):
            config = (
                {"operations": [{"op": "filter", "condition": "amount > 0"}]}
                if step_type == "transform"
                else {}
            )
            row = PipelineStep.objects.create(
                pipeline=pipeline, name=step_name, step_type=step_type, config=config, order_index=position
            )
            task_id = task_id_for(step_name)
            entries.append(
                {
                    "id": str(row.pk),
                    "name": step_name,
                    "task_id": task_id,
                    "step_type": step_type,
                    "upstream": [task_id_for(u) for u in upstream],
                    "inputs": [f"{task_id_for(u)}_out" for u in upstream],
                    "output": f"{task_id}_out" if step_type in {"extract", "transform"} else None,
                    "behaviour": behaviour,
                    "retries": retries,
                }
            )
        pipeline.refresh_from_db()
        return {
            "dag_id": dag_id_for(pipeline.pk),
            "pipeline": {
                "id": str(pipeline.pk),
                "name": pipeline.name,
                "organization": organization.slug,
                "version": pipeline.version,
                "spec_hash": f"sha256:test-{uuid.uuid4().hex[:8]}",
            },
            "steps": entries,
            **extra,
        }

    return make


@pytest.fixture
def run_dag(airflow_db):
    """Write the spec's DAG file into the session's dags folder, run it with dag.test(), wait for write-back."""
    from airflow_plugin import writeback
    from tests.support.writeback_dags import write_dag_file

    def run(spec: dict[str, Any], **test_kwargs: Any):
        path = write_dag_file(os.environ["AIRFLOW__CORE__DAGS_FOLDER"], spec)
        dag = runpy.run_path(str(path))["dag"]
        dag_run = dag.test(**test_kwargs)
        assert writeback.flush(timeout=60), "the recorder did not finish writing within 60 s"
        return dag_run

    return run
