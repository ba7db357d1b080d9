"""Admin actions: "Generate DAG files" (generate_dags for the selected pipelines), "Run now" and "Re-run failed
tasks" (Django controls Airflow through its REST API, django_etl/control/), reported as messages."""

from __future__ import annotations

from django.contrib import admin, messages

from django_etl.errors import first_line
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
    for problem in summary.airflow_problems:
        modeladmin.message_user(request, problem, messages.WARNING)
    level = messages.SUCCESS if summary.ok else messages.WARNING
    modeladmin.message_user(request, summary.line(), level)


def _airflow_error(modeladmin, request, exc: Exception, what: str) -> None:
    """Airflow unreachable or refusing: one clear message; nothing was changed in Django."""
    from django_etl.control.airflow_api import AirflowUnavailable

    reason = "Airflow is unreachable" if isinstance(exc, AirflowUnavailable) else "Airflow refused"
    modeladmin.message_user(
        request, f"{what}: {reason} ({first_line(exc)}). Nothing was changed.", messages.ERROR
    )


@admin.action(description="Run now (in Airflow)", permissions=["run"])
def run_now(modeladmin, request, queryset) -> None:
    """Start a run of each selected active or paused pipeline, recorded as triggered by this user."""
    from django_etl.control.airflow_api import AirflowRefused, AirflowUnavailable
    from django_etl.control.runs import start_run
    from django_etl.pipelines.choices import DEPLOYED_STATUSES
    from django_etl.runs.choices import TriggerType

    for pipeline in queryset.select_related("organization"):
        if pipeline.status not in DEPLOYED_STATUSES:
            modeladmin.message_user(
                request,
                f"{pipeline.name}: only active or paused pipelines have a DAG to run",
                messages.WARNING,
            )
            continue
        try:
            run = start_run(pipeline, user=request.user, trigger_type=TriggerType.API)
        except (AirflowUnavailable, AirflowRefused) as exc:
            _airflow_error(modeladmin, request, exc, f"{pipeline.name} was not started")
            continue
        paused = (
            " (its DAG is paused: the run waits until it is unpaused)" if pipeline.status != "active" else ""
        )
        modeladmin.message_user(
            request, f"{pipeline.name}: run {run.airflow_run_id} started{paused}", messages.SUCCESS
        )


@admin.action(description="Re-run failed tasks (in Airflow)", permissions=["run"])
def rerun_failed_tasks(modeladmin, request, queryset) -> None:
    """Clear the failed tasks of each selected run in Airflow, so they run again."""
    from django_etl.control.airflow_api import AirflowRefused, AirflowUnavailable
    from django_etl.control.runs import rerun_failed_tasks as clear

    for pipeline_run in queryset.select_related("pipeline"):
        label = f"{pipeline_run.pipeline.name} run {pipeline_run.airflow_run_id or pipeline_run.pk}"
        try:
            cleared = clear(pipeline_run)
        except (AirflowUnavailable, AirflowRefused) as exc:
            _airflow_error(modeladmin, request, exc, f"{label} was not re-run")
            continue
        level = messages.SUCCESS if cleared else messages.INFO
        modeladmin.message_user(request, f"{label}: {cleared} task(s) cleared to run again", level)


@admin.action(description="Create or rotate webhook secret", permissions=["run"])
def rotate_webhook_secret(modeladmin, request, queryset) -> None:
    """Give each selected pipeline a webhook endpoint with a new secret, shown once (the old one stops working)."""
    from django_etl.control.models import WebhookEndpoint

    for pipeline in queryset:
        endpoint, secret = WebhookEndpoint.rotate(pipeline)
        url = request.build_absolute_uri(f"/hooks/pipelines/{endpoint.pk}/trigger")
        modeladmin.message_user(
            request,
            f"{pipeline.name}: webhook {url} — secret (shown once, store it now): {secret}",
            messages.WARNING,
        )
