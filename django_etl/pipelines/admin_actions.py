"""The admin action "Generate DAG files": generate_dags for the selected pipelines, reported as messages."""

from __future__ import annotations

from django.contrib import admin, messages

from django_etl.pipelines.generator import generate

# A long validation report would bury the page; the rest is one generate_dags run away.
MAX_PROBLEM_MESSAGES = 20


@admin.action(description="Generate DAG files", permissions=["change"])
def generate_dag_files(modeladmin, request, queryset) -> None:
    """Write (or, for pipelines that are not active or paused, remove) the selected pipelines' DAG files."""
    # The queryset is already limited to the user's organizations by the admin.
    ids = list(queryset.values_list("pk", flat=True))
    try:
        summary = generate(pipeline_ids=ids)
    except OSError as exc:
        modeladmin.message_user(request, f"Could not write the dags folder: {exc}", messages.ERROR)
        return
    problems = [str(problem) for report in summary.failed.values() for problem in report]
    for problem in problems[:MAX_PROBLEM_MESSAGES]:
        modeladmin.message_user(request, problem, messages.ERROR)
    if len(problems) > MAX_PROBLEM_MESSAGES:
        more = len(problems) - MAX_PROBLEM_MESSAGES
        modeladmin.message_user(request, f"… and {more} more problem(s): run generate_dags", messages.ERROR)
    level = messages.SUCCESS if summary.ok else messages.WARNING
    modeladmin.message_user(request, summary.line(), level)
