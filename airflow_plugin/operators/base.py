"""The base operator of every pipeline step: stores the step's compiled spec; does all work in execute()."""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseOperator


class EtlStepOperator(BaseOperator):
    """One PipelineStep as an Airflow task.

    ``step`` is the step's entry of the compiled pipeline spec (plain JSON data: ids, type, config, the
    dataset names it reads and writes). Nothing here touches Django or the network: the DAG file that
    builds this operator is parsed every 30 s by Airflow. ``execute()`` resolves connectors and secrets.
    """

    step_type: str = ""
    template_fields = ("config",)
    template_fields_renderers = {"config": "json"}
    ui_color = "#e8f0fe"

    def __init__(self, *, step: dict[str, Any], pipeline: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.step = step
        self.pipeline = pipeline
        self.step_id: str = step["id"]
        self.config: dict[str, Any] = step.get("config", {})
        self.inputs: list[str] = list(step.get("inputs", []))
        # Not ``output``: BaseOperator.output is the XComArg of the task's return value.
        self.output_dataset: str | None = step.get("output")

    def execute(self, context: Any) -> Any:
        from airflow_plugin.runtime import run_step  # heavy imports happen only in the task process

        return run_step(self, context)
