"""Stable Airflow names for pipelines and steps: dag ids from pipeline ids, task ids from step names."""

from __future__ import annotations

import re
import uuid

DAG_ID_PREFIX = "pipeline_"


def dag_id_for(pipeline_id: uuid.UUID | str) -> str:
    """The DAG id of a pipeline: derived from its id, so renaming never orphans its Airflow history."""
    return f"{DAG_ID_PREFIX}{uuid.UUID(str(pipeline_id)).hex}"


def pipeline_id_from_dag_id(dag_id: str) -> uuid.UUID | None:
    """The pipeline id a generated DAG id encodes, or None for a DAG this platform did not generate."""
    if not dag_id.startswith(DAG_ID_PREFIX):
        return None
    try:
        return uuid.UUID(hex=dag_id.removeprefix(DAG_ID_PREFIX))
    except ValueError:
        return None


def task_id_for(step_name: str) -> str:
    """A readable Airflow task id from a step name: lower case, words joined by underscores."""
    slug = re.sub(r"[^a-z0-9]+", "_", step_name.strip().lower()).strip("_")
    if not slug:
        slug = "step"
    if slug[0].isdigit():
        slug = f"step_{slug}"
    return slug[:200]
