"""The step editor of the pipeline page: config as indented JSON checked against the step schemas as one types,
SQL shown as code, and dependencies picked by step name.

The form fields stay the JSON fields the validation layer reads (pipelines/forms.py): the widgets only add a
view on them, so a browser without JavaScript posts the same JSON text as before.
"""

from __future__ import annotations

import json
from functools import cache

from django import forms
from django.utils.html import format_html, format_html_join

from django_etl.stepkinds import STEP_KINDS

SQL_KEYS = ("sql", "query")
MEDIA = forms.Media(
    js=["etl/vendor/ajv/ajv2020.min.js", "etl/step_editor.js"], css={"all": ["etl/step_editor.css"]}
)


@cache
def step_schemas() -> dict[str, dict]:
    """JSON Schema (draft 2020-12, from pydantic) of each step kind's config, by step type."""
    return {name: kind.schema.model_json_schema() for name, kind in STEP_KINDS.items()}


class StepConfigWidget(forms.Textarea):
    """The config as indented JSON, with a line under it saying what the step schema thinks of it."""

    def __init__(self, attrs=None):
        super().__init__(
            {"class": "etl-step-config", "rows": 10, "cols": 90, "spellcheck": "false", **(attrs or {})}
        )

    @property
    def media(self):
        return MEDIA

    def format_value(self, value):
        try:
            return json.dumps(json.loads(value), indent=2, ensure_ascii=False)
        except (TypeError, ValueError, RecursionError):  # shown as typed: the field's own error names it
            return super().format_value(value)

    def render(self, name, value, attrs=None, renderer=None):
        textarea = super().render(name, value, attrs, renderer)
        return format_html(
            '{}<div class="etl-config-status" aria-live="polite"></div>'
            '<pre class="etl-config-sql" hidden></pre>',
            textarea,
        )


class StepDependenciesWidget(forms.Textarea):
    """The JSON list of step ids, picked from the pipeline's steps by name (the list stays the posted value)."""

    def __init__(self, steps=(), attrs=None):
        super().__init__({"class": "etl-step-deps-json", "rows": 2, "cols": 60, **(attrs or {})})
        self.steps = list(steps)  # (id, name)

    @property
    def media(self):
        return MEDIA

    def render(self, name, value, attrs=None, renderer=None):
        textarea = super().render(name, value, attrs, renderer)
        options = format_html_join("", '<option value="{}">{}</option>', self.steps)
        return format_html(
            '{}<select multiple class="etl-step-deps" hidden size="{}" aria-label="depends on">{}</select>'
            '<p class="etl-deps-help" hidden>Ctrl/⌘-click to pick several. Steps added in this save can be '
            "picked after saving.</p>",
            textarea,
            max(2, min(len(self.steps), 6)),
            options,
        )


def formfield(db_field, field, pipeline=None):
    """The step editor's widget on ``field`` (from the admin's own formfield) for config and dependencies."""
    if field is None:
        return field
    if db_field.name == "config":
        field.widget = StepConfigWidget()
    elif db_field.name == "dependencies":
        steps = (
            [] if pipeline is None else [(str(s.pk), s.name) for s in pipeline.steps.order_by("order_index")]
        )
        field.widget = StepDependenciesWidget(steps)
    return field


def steps_at_a_glance(pipeline) -> list[dict]:
    """The pipeline's steps as the page's summary shows them: names of dependencies, SQL as code."""
    steps = list(pipeline.steps.order_by("order_index", "name"))
    names = {str(step.pk): step.name for step in steps}
    rows = []
    for step in steps:
        config = step.config if isinstance(step.config, dict) else {}
        sql = next((config[key] for key in SQL_KEYS if isinstance(config.get(key), str) and config[key]), "")
        rows.append(
            {
                "step": step,
                "depends_on": [
                    names.get(str(dep), f"unknown step {dep}") for dep in (step.dependencies or [])
                ],
                "sql": sql,
                "settings": {k: v for k, v in config.items() if k not in SQL_KEYS},
            }
        )
    return rows
