"""Notify: send the run's summary (from the manifests of its tasks) by email and/or webhook.

Sending is ``django_etl.messaging`` (shared with alert routing).

The summary says how the run ended: ``success``, ``failed``, or ``cancelled`` when tasks were stopped before
they ran (a run marked failed skips them); the subject line says it too.
"""

from __future__ import annotations

from typing import Any

from airflow_plugin.steps.context import StepFailure, StepRun

# How each ending reads in a subject line, and which ``when`` it answers to.
ENDINGS = {"success": "succeeded", "failed": "FAILED", "cancelled": "was CANCELLED"}
WHEN = {"success": "success", "failed": "failure", "cancelled": "failure"}
STOPPED_STATES = {"skipped", "removed"}
FAILED_STATES = {"failed", "upstream_failed"}


def task_states(step: StepRun) -> dict[str, str]:
    """The other tasks' states in this run, from Airflow's execution API; {} where it cannot say."""
    try:
        from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

        states = RuntimeTaskInstance.get_task_states(dag_id=step.dag_id, run_ids=[step.run_id])
    except Exception:  # outside a supervised task (unit tests): the manifests alone decide
        return {}
    found = (states or {}).get(step.run_id) or {}
    return {task: str(state) for task, state in found.items() if task != step.task_id and state}


def run_outcome(manifests: list[dict[str, Any]], states: dict[str, str]) -> tuple[str, list[str]]:
    """``success``, ``failed`` or ``cancelled``, and the tasks that did not succeed."""
    failed = sorted(
        {m["task_id"] for m in manifests if m.get("status") == "failed"}
        | {task for task, state in states.items() if state in FAILED_STATES}
    )
    stopped = sorted(task for task, state in states.items() if state in STOPPED_STATES)
    if stopped:
        return "cancelled", sorted(set(failed) | set(stopped))
    return ("failed" if failed else "success"), failed


def summarize(step: StepRun) -> dict[str, Any]:
    manifests = [
        m for m in step.staging.run_manifests(step.dag_id, step.run_id) if m.get("task_id") != step.task_id
    ]
    status, failed = run_outcome(manifests, task_states(step))
    failing_checks = [
        {
            "task_id": m["task_id"],
            "check": c["name"],
            "severity": c["severity"],
            "failing_count": c["failing_count"],
        }
        for m in manifests
        for c in m.get("checks", [])
        if not c.get("passed")
    ]
    return {
        "pipeline": step.pipeline.get("name"),
        "pipeline_id": str(step.pipeline.get("id")),
        "dag_id": step.dag_id,
        "run_id": step.run_id,
        "status": status,
        "failed_tasks": failed,
        "tasks": [
            {
                "task_id": m["task_id"],
                "status": m.get("status"),
                "rows_out": m.get("metrics", {}).get("rows_out"),
            }
            for m in sorted(manifests, key=lambda m: m["task_id"])
        ],
        "failing_checks": failing_checks,
        "data_interval_start": step.data_interval_start.isoformat() if step.data_interval_start else None,
        "data_interval_end": step.data_interval_end.isoformat() if step.data_interval_end else None,
    }


def as_text(summary: dict[str, Any]) -> str:
    lines = [
        f"Pipeline {summary['pipeline']!r}: run {summary['run_id']} {ENDINGS[summary['status']]}",
        f"Data interval: {summary['data_interval_start']} to {summary['data_interval_end']}",
        "",
    ]
    if summary["failed_tasks"]:
        lines += [f"Did not succeed: {', '.join(summary['failed_tasks'])}", ""]
    lines += [f"- {t['task_id']}: {t['status']} ({t['rows_out']} rows out)" for t in summary["tasks"]]
    if summary["failing_checks"]:
        lines += ["", "Failing data-quality checks:"]
        lines += [
            f"- {c['task_id']}.{c['check']} ({c['severity']}): {c['failing_count']}"
            for c in summary["failing_checks"]
        ]
    return "\n".join(lines)


def run(step: StepRun) -> None:
    config = step.config
    summary = summarize(step)
    status = summary["status"]
    if config.when != "always" and config.when != WHEN[status]:
        step.result.details["sent"] = f"not sent: run is {status}, notify when {config.when}"
        return
    ending = f"{summary['pipeline']} {ENDINGS[status]}"
    # A subject of the pipeline's own still says how the run ended.
    subject = f"[ETL] {config.subject}: {ENDINGS[status]}" if config.subject else f"[ETL] {ending}"
    text = as_text(summary)
    sent = []
    if config.email:
        from django_etl.messaging import EmailNotSent, send_email

        try:
            send_email(subject, text, list(config.email))
        except EmailNotSent as exc:
            raise StepFailure(str(exc), retryable=True) from None
        sent.append(f"email to {len(config.email)} recipient(s)")
    if config.webhook_connector:
        from django_etl.messaging import post_webhook, webhook_payload

        adapter = step.adapter(config.webhook_connector)
        payload = webhook_payload(config.webhook_format, subject, text, summary)
        http_status = post_webhook(adapter, config.webhook_path, payload)
        sent.append(f"webhook HTTP {http_status}")
    step.result.details["sent"] = ", ".join(sent)
    step.result.details["run_status"] = status
