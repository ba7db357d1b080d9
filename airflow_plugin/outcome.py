"""The run-outcome task a DAG gets after its final notify step, so a teardown never turns a stopped run into a success.

A final notify step is a teardown (builder.py): Airflow runs it whatever happened upstream and leaves it out of
the run's state. When a run is marked failed while steps are still to run, Airflow skips those steps and lets
the teardown finish; its skipped leaves then count as done and the run would be settled as a success. This
task runs last, as a teardown itself (so the mark does not skip it) with ``on_failure_fail_dagrun``, and fails
when any step did not succeed, so the run ends failed.
It is no pipeline step: write-back does not record it (docs/dag-mapping.md).
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseOperator

RUN_OUTCOME_TASK_ID = "etl__run_outcome"


class RunOutcomeOperator(BaseOperator):
    """Fails when a task of this run other than ``ignore`` (and itself) did not end in success."""

    ui_color = "#eeeeee"

    def __init__(self, *, ignore: list[str], **kwargs: Any) -> None:
        kwargs.setdefault("retries", 0)
        super().__init__(**kwargs)
        self.ignore = list(ignore)

    def execute(self, context: Any) -> dict[str, str]:
        from airflow.sdk.exceptions import AirflowFailException
        from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

        ti = context["ti"]
        states = (
            RuntimeTaskInstance.get_task_states(dag_id=ti.dag_id, run_ids=[ti.run_id]).get(ti.run_id) or {}
        )
        skip = {*self.ignore, self.task_id}
        unsuccessful = {
            task: str(state) for task, state in states.items() if task not in skip and state != "success"
        }
        if unsuccessful:
            listed = ", ".join(f"{task} {state}" for task, state in sorted(unsuccessful.items()))
            raise AirflowFailException(f"the run did not complete: {listed}")
        return {"outcome": "success"}
