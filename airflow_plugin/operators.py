"""The operators of pipeline steps: one class per step kind, made from the step-kind registry.

A class only stores the step's compiled spec; its work is the kind's implementation in ``airflow_plugin/steps``,
imported in the task process by ``airflow_plugin.runtime``. Nothing here touches Django or the network: the
DAG file that builds these operators is parsed every 30 s by Airflow.
"""

from __future__ import annotations

import logging
from typing import Any

from airflow.sdk import BaseOperator

from django_etl.stepkinds import STEP_KINDS, StepKind


class EtlStepOperator(BaseOperator):
    """One PipelineStep as an Airflow task.

    ``step`` is the step's entry of the compiled pipeline spec (plain JSON data: ids, type, config, the
    dataset names it reads and writes). ``execute()`` resolves connectors and secrets and runs the kind's
    implementation.
    """

    step_type: str = ""
    # Tenants write step configs: Airflow's Jinja, which trusts DAG authors, never renders them. The platform's
    # sandbox does, in execute() (render_config below; docs/security.md, "Templates").
    template_fields = ()
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

    def render_config(self, context: Any) -> dict[str, Any]:
        """The step's config rendered by the template sandbox; ConfigurationError (never retried) otherwise."""
        from django_etl.stepkinds.templating import render_config, values_from_context

        self.rendered_config = render_config(self.config, values_from_context(context), self.step_type)
        _show_rendered(self.rendered_config)
        return self.rendered_config

    # OpenLineage (apache-airflow-providers-openlineage, off unless a transport is configured): the provider's
    # listener calls these after the task; they read the result manifest the step wrote.
    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """Inputs, outputs, schemas and column lineage of this try (airflow_plugin/openlineage.py)."""
        from airflow_plugin.openlineage import lineage_of_try

        return lineage_of_try(task_instance)

    def get_openlineage_facets_on_failure(self, task_instance: Any) -> Any:
        """What a failed try read (and wrote before failing): its manifest is written whatever the outcome."""
        from airflow_plugin.openlineage import lineage_of_try

        return lineage_of_try(task_instance)


def _show_rendered(config: dict[str, Any]) -> None:
    """Airflow's "Rendered Template" view shows the sandbox's rendering, sent as Airflow sends its own."""
    try:
        from airflow.sdk._shared.secrets_masker import redact
        from airflow.sdk.execution_time import task_runner
        from airflow.sdk.execution_time.comms import SetRenderedFields

        fields = {"config": redact(config, "config")}
        task_runner.SUPERVISOR_COMMS.send(msg=SetRenderedFields(rendered_fields=fields))
    except Exception:  # a convenience of the UI (internal API): never fail a task over it
        logging.getLogger(__name__).debug("could not report the rendered config", exc_info=True)


def _operator_class(kind: StepKind) -> type[EtlStepOperator]:
    """``ExtractOperator`` for the extract kind, and so on: a named subclass Airflow's UI shows as the type."""
    name = f"{kind.label.replace(' ', '')}Operator"
    attributes = {
        "step_type": kind.name,
        "ui_color": kind.ui_color,
        "__module__": __name__,
        "__qualname__": name,
        "__doc__": f"The {kind.name} step's operator ({kind.implementation}).",
    }
    return type(name, (EtlStepOperator,), attributes)


OPERATORS: dict[str, type[EtlStepOperator]] = {
    name: _operator_class(kind) for name, kind in STEP_KINDS.items()
}
# Module attributes, so each class is importable by the name Airflow records (airflow_plugin.operators.LoadOperator).
globals().update({cls.__name__: cls for cls in OPERATORS.values()})

__all__ = ["OPERATORS", "EtlStepOperator", *(cls.__name__ for cls in OPERATORS.values())]
