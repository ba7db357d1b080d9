"""Notify: send the run's summary (from the manifests of its tasks) by email and/or webhook."""

from __future__ import annotations

from typing import Any

from airflow_plugin.steps.context import StepFailure, StepRun


def summarize(step: StepRun) -> dict[str, Any]:
    manifests = [
        m for m in step.staging.run_manifests(step.dag_id, step.run_id) if m.get("task_id") != step.task_id
    ]
    failed = [m["task_id"] for m in manifests if m.get("status") == "failed"]
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
        "status": "failed" if failed else "success",
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
        f"Pipeline {summary['pipeline']!r}: run {summary['run_id']} {summary['status'].upper()}",
        f"Data interval: {summary['data_interval_start']} to {summary['data_interval_end']}",
        "",
    ]
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
    if config.when != "always" and config.when != summary["status"]:
        step.result.details["sent"] = f"not sent: run is {summary['status']}, notify when {config.when}"
        return
    subject = config.subject or f"[ETL] {summary['pipeline']} {summary['status']}"
    text = as_text(summary)
    sent = []
    if config.email:
        from django.conf import settings
        from django.core.mail import send_mail

        try:
            send_mail(subject, text, settings.DEFAULT_FROM_EMAIL, list(config.email))
        except OSError as exc:
            raise StepFailure(f"email could not be sent: {exc}", retryable=True) from None
        sent.append(f"email to {len(config.email)} recipient(s)")
    if config.webhook_connector:
        adapter = step.adapter(config.webhook_connector)
        payload = (
            {"text": f"*{subject}*\n{text}"}
            if config.webhook_format == "slack"
            else {"subject": subject, **summary}
        )
        status = adapter.post_json(config.webhook_path, payload)
        sent.append(f"webhook HTTP {status}")
    step.result.details["sent"] = ", ".join(sent)
    step.result.details["run_status"] = summary["status"]
