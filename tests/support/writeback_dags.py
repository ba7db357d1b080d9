"""Scripted DAGs for the write-back tests: tasks shaped like EtlStepOperator that succeed, fail or die on cue.

A test writes a small DAG file (``write_dag_file``) into the session's dags folder; the file calls ``build``
with a plain spec, so Airflow parses, serializes and runs it like a generated pipeline DAG, with the real
callbacks attached. Each task writes the result manifest the real operators write.
"""

from __future__ import annotations

import json
import os
import signal
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from airflow.sdk import DAG, BaseOperator

from airflow_plugin.writeback import DAG_CALLBACKS, TASK_CALLBACKS

ROWS = 10


class ScriptedStepOperator(BaseOperator):
    """A pipeline step whose behaviour the test picks: ok, fail_once, fail_retryable, fail, dq_fail, hang, sigkill…"""

    def __init__(self, *, step: dict[str, Any], pipeline: dict[str, Any], behaviour: str = "ok", **kwargs):
        super().__init__(**kwargs)
        self.step = step
        self.pipeline = pipeline
        self.step_id = step["id"]
        self.behaviour = behaviour

    def execute(self, context: Any) -> Any:
        from airflow.sdk.exceptions import AirflowException, AirflowFailException

        ti = context["ti"]
        behaviour = self.behaviour
        if behaviour == "sigkill":
            # As the real runtime does when a try starts: the record the reconciler asks the OS with.
            from airflow_plugin.runtime import record_attempt
            from django_etl.dataplane.staging import Staging

            record_attempt(
                Staging(), context["dag_run"].dag_id, context["run_id"], self.task_id, ti.try_number
            )
            os.kill(os.getpid(), signal.SIGKILL)
        if behaviour == "cut_db":
            _set_django_db_reachable(False)
        if behaviour == "restore_db":
            _set_django_db_reachable(True)
        if behaviour == "hang":
            time.sleep(60)  # longer than the step's execution_timeout
        if behaviour == "fail_once" and ti.try_number == 1:
            raise AirflowException("source timed out on the first try")
        if behaviour == "fail_retryable":  # every try fails and may be retried
            raise AirflowException(f"source timed out on try {ti.try_number}")
        if behaviour == "fail":
            raise AirflowFailException(f"step {self.step['name']} cannot run: the table does not exist")
        checks = []
        if self.step["step_type"] == "validate":
            passed = behaviour != "dq_fail"
            checks = [
                {
                    "name": "rows",
                    "check": "row_count",
                    "severity": "error",
                    "passed": True,
                    "failing_count": 0,
                },
                {
                    "name": "amount_not_null",
                    "check": "not_null",
                    "severity": "error",
                    "passed": passed,
                    "failing_count": 0 if passed else 3,
                    "sample_keys": [] if passed else [[1], [4], [7]],
                },
            ]
        failed = behaviour == "dq_fail"
        _write_manifest(context, self, checks, failed)
        if failed:
            raise AirflowFailException("data-quality check amount_not_null failed: 3 rows")
        return None


def _write_manifest(context: Any, operator: ScriptedStepOperator, checks: list, failed: bool) -> None:
    from django_etl.dataplane.staging import Staging

    step, run = operator.step, context["dag_run"]
    inputs = [
        {
            "dataset": name,
            "uri": f"staged://{name}",
            "rows": ROWS,
            "schema": [{"name": "id", "type": "int64"}],
        }
        for name in step.get("inputs", [])
    ]
    outputs = []
    if step.get("output"):
        schema = [{"name": "id", "type": "int64"}, {"name": "amount", "type": "double"}]
        outputs = [
            {"dataset": step["output"], "uri": f"staged://{step['output']}", "rows": ROWS, "schema": schema}
        ]
    Staging().write_manifest(
        run.dag_id,
        run.run_id,
        operator.task_id,
        {
            "step_id": step["id"],
            "task_id": operator.task_id,
            "step_type": step["step_type"],
            "status": "failed" if failed else "success",
            "error": "amount_not_null failed" if failed else None,
            "metrics": {
                "rows_in": ROWS if inputs else 0,
                "rows_out": ROWS,
                "bytes": 100,
                "duration_seconds": 0.01,
            },
            "inputs": inputs,
            "outputs": outputs,
            "checks": checks,
            "column_mapping": {"amount": ["amount"]} if inputs else {},
            "relationship": None,
        },
    )


def _set_django_db_reachable(reachable: bool) -> None:
    """ALLOW_CONNECTIONS on the Django test database, and end its other sessions when closing it."""
    import psycopg

    name = os.environ["ETL_WRITEBACK_DB_NAME"]
    keep = os.environ.get("ETL_WRITEBACK_KEEP_PID", "0")
    with psycopg.connect(os.environ["ETL_WRITEBACK_ADMIN_URL"], autocommit=True) as admin:
        admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {str(reachable).lower()}')
        if not reachable:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> %s",
                (name, int(keep)),
            )


def build(spec: dict[str, Any]) -> DAG:
    dag = DAG(
        dag_id=spec["dag_id"],
        schedule=None,
        start_date=datetime(2025, 1, 1, tzinfo=UTC),
        catchup=False,
        **DAG_CALLBACKS,
    )
    tasks = {}
    for step in spec["steps"]:
        tasks[step["task_id"]] = ScriptedStepOperator(
            task_id=step["task_id"],
            step=step,
            pipeline=spec["pipeline"],
            behaviour=step.get("behaviour", "ok"),
            retries=step.get("retries", 0),
            retry_delay=timedelta(seconds=0),
            execution_timeout=timedelta(seconds=step["timeout"]) if step.get("timeout") else None,
            dag=dag,
            **{name: [cb] * spec.get("callback_copies", 1) for name, cb in TASK_CALLBACKS.items()},
        )
    for step in spec["steps"]:
        for upstream in step.get("upstream", []):
            tasks[upstream] >> tasks[step["task_id"]]
    return dag


def write_dag_file(folder: str | Path, spec: dict[str, Any]) -> Path:
    """A DAG file for Airflow's dags folder (airflow DAG) that builds ``spec``."""
    path = Path(folder) / f"{spec['dag_id']}.py"
    path.write_text(
        '"""Write-back test DAG (airflow dag)."""\n'
        "import json\n\n"
        "from tests.support.writeback_dags import build\n\n"
        f"dag = build(json.loads({json.dumps(json.dumps(spec))}))\n"
    )
    return path
