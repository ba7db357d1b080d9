"""Admin forms for pipelines and steps: the validation generate_dags applies, every problem in one response.

A pipeline and its steps are checked together on add and on change alike: each step's config and the connectors
it names (in the pipeline's organization), its dependencies among the steps being saved, then the rules over the
set (task ids, order, cycles, datasets). Every problem lands on the step form and field it names, in one round.
"""

from __future__ import annotations

import copy

from django import forms
from django.core.exceptions import ValidationError
from django.forms.models import BaseInlineFormSet, construct_instance

from django_etl.pipelines.models import PipelineStep
from django_etl.pipelines.validation import (
    Problem,
    Report,
    validate_step,
    validate_step_graph,
    validate_step_set,
)

# The keys validate_step_set reports before it skips the graph and dataset rules (task ids and order).
NAMING_KEYS = {"name", "order_index"}
# A step whose fields did not parse is not checked further: its own field errors say what to fix.
CHECKED_FIELDS = {"step_type", "config", "dependencies"}


def set_problems(pipeline, steps) -> Report:
    """The rules over the steps together; the graph and dataset rules run even when names clash."""
    report = validate_step_set(pipeline, steps)
    if report and all(problem.key in NAMING_KEYS for problem in report):
        report.extend(validate_step_graph(pipeline, steps))
    return report


def names_step(problem: Problem, step) -> bool:
    return problem.where == f"step {step.name!r}" or problem.where.endswith(f" step {step.name!r}")


def add_problem(form: forms.BaseForm, problem: Problem) -> None:
    """Put ``problem`` on its field of ``form`` unless the form already says the same (key and message)."""
    field = problem.field if problem.field in form.fields else None
    said = f"{problem.key}: {problem.message}" if problem.key else problem.message
    if any(str(message).endswith(said) for message in form.errors.get(field or "__all__", [])):
        return
    form.add_error(field, str(problem))


def fields_that_failed(form: forms.BaseForm) -> set[str]:
    """Fields whose own input was refused (bad JSON, a missing value): model-level problems carry no code."""
    return {name for name, errors in form.errors.as_data().items() if any(error.code for error in errors)}


class StepFormSet(BaseInlineFormSet):
    """The steps inline on a pipeline's page, validated as the pipeline generate_dags will compile."""

    def clean(self) -> None:
        super().clean()
        pipeline = self.instance
        live = [form for form in self.forms if self._is_live(form)]
        steps = [form.instance for form in live]
        for form in live:
            if fields_that_failed(form) & CHECKED_FIELDS:
                continue
            for problem in validate_step(form.instance, siblings=steps, pipeline=pipeline):
                add_problem(form, problem)
        unplaced = []
        for problem in set_problems(pipeline, steps):
            forms_named = [form for form in live if names_step(problem, form.instance)]
            if forms_named:
                add_problem(forms_named[-1], problem)
            else:
                unplaced.append(str(problem))
        if unplaced:
            raise ValidationError(unplaced)

    def _is_live(self, form) -> bool:
        """A step that will exist after the save: not deleted, and not an untouched empty extra form."""
        if self.can_delete and self._should_delete_form(form):
            return False
        return not (form in self.extra_forms and not form.has_changed())


class PipelineStepForm(forms.ModelForm):
    """A step on its own page: checked inside its pipeline, as the pipeline's page checks it."""

    class Meta:
        model = PipelineStep
        fields = ["pipeline", "name", "order_index", "step_type", "config", "dependencies", "is_parallel"]

    def clean(self):
        cleaned = super().clean()
        pipeline = cleaned.get("pipeline")
        if pipeline is None or self.errors:
            return cleaned
        # The step as it would be saved, among its siblings as they are stored.
        step = construct_instance(self, copy.copy(self.instance), self._meta.fields, self._meta.exclude)
        others = list(PipelineStep.objects.filter(pipeline=pipeline).exclude(pk=step.pk))
        for problem in set_problems(pipeline, [*others, step]):
            if names_step(problem, step):
                add_problem(self, problem)
            else:
                self.add_error(None, str(problem))
        return cleaned
