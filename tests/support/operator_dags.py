"""DAG files for the operator tests: the real step operators, wired from a plain spec, without callbacks.

Without write-back callbacks the staged data and manifests of a run stay in place for the test to read.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from airflow.sdk import DAG

from airflow_plugin.operators import OPERATORS


def build(spec: dict[str, Any]) -> DAG:
    dag = DAG(
        dag_id=spec["dag_id"],
        schedule=spec.get("schedule"),
        start_date=datetime(2025, 1, 1, tzinfo=UTC),
        catchup=False,
    )
    tasks = {}
    for step in spec["steps"]:
        tasks[step["task_id"]] = OPERATORS[step["step_type"]](
            task_id=step["task_id"],
            step=step,
            pipeline=spec["pipeline"],
            retries=step.get("retries", 0),
            retry_delay=timedelta(seconds=0),
            execution_timeout=(
                timedelta(seconds=step["execution_timeout_seconds"])
                if step.get("execution_timeout_seconds")
                else None
            ),
            dag=dag,
        )
    for step in spec["steps"]:
        for upstream in step.get("upstream", []):
            tasks[upstream] >> tasks[step["task_id"]]
    return dag


def write_dag_file(folder: str | Path, spec: dict[str, Any]) -> Path:
    path = Path(folder) / f"{spec['dag_id']}.py"
    path.write_text(
        '"""Operator test DAG (airflow dag)."""\n'
        "import json\n\n"
        "from tests.support.operator_dags import build\n\n"
        f"dag = build(json.loads({json.dumps(json.dumps(spec))}))\n"
    )
    return path
