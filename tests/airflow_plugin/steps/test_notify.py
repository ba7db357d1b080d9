"""Notify: the run summary by email (Django's backend) and by webhook (JSON or Slack) through an API connector."""

from __future__ import annotations

import pytest

from airflow_plugin.steps.notify import as_text, run_outcome
from tests.airflow_plugin.steps.conftest import file_runtime
from tests.support.servers import api_runtime


def test_notify_sends_email_and_slack_webhook(file_root, make_run, execute, api_server, mailoutbox, settings):
    (file_root / "o.csv").write_text("id\n1\n2\n")
    execute(
        make_run(
            "extract",
            {"connector": "landing", "path": "o.csv"},
            connectors={"landing": file_runtime(file_root)},
            output="o",
            task_id="extract_o",
        )
    )
    run = make_run(
        "notify",
        {
            "email": ["ops@example.com"],
            "webhook_connector": "hooks",
            "webhook_path": "/hook",
            "webhook_format": "slack",
        },
        connectors={"hooks": api_runtime(api_server.base_url)},
        task_id="tell",
    )
    manifest = execute(run)
    assert manifest["status"] == "success"
    assert len(mailoutbox) == 1 and mailoutbox[0].to == ["ops@example.com"]
    assert "extract_o: success (2 rows out)" in mailoutbox[0].body
    post = api_server.state["posts"][0]
    assert post["path"] == "/hook" and post["body"]["text"].startswith("*[ETL] Orders succeeded*")


def test_notify_when_failure_skips_successful_run(make_run, execute, api_server):
    run = make_run(
        "notify",
        {"webhook_connector": "hooks", "when": "failure"},
        connectors={"hooks": api_runtime(api_server.base_url)},
        task_id="tell",
    )
    manifest = execute(run)
    assert manifest["details"]["sent"].startswith("not sent")
    assert api_server.state["posts"] == []


@pytest.mark.parametrize(
    ("manifests", "states", "expected"),
    [
        ([{"task_id": "a", "status": "success"}], {"a": "success"}, ("success", [])),
        ([{"task_id": "a", "status": "failed"}], {}, ("failed", ["a"])),
        ([], {"a": "success", "b": "upstream_failed"}, ("failed", ["b"])),
        # Marked failed while b was still to run: Airflow skipped b.
        ([{"task_id": "a", "status": "success"}], {"a": "success", "b": "skipped"}, ("cancelled", ["b"])),
        ([], {"a": "failed", "b": "skipped"}, ("cancelled", ["a", "b"])),
    ],
)
def test_run_outcome_says_how_the_run_ended(manifests, states, expected):
    assert run_outcome(manifests, states) == expected


def test_as_text_of_failed_run_names_the_ending_and_the_failed_tasks():
    summary = {
        "pipeline": "Orders",
        "run_id": "r1",
        "status": "failed",
        "failed_tasks": ["load"],
        "tasks": [{"task_id": "load", "status": "failed", "rows_out": None}],
        "failing_checks": [],
        "data_interval_start": "2026-01-01T00:00:00+00:00",
        "data_interval_end": "2026-01-02T00:00:00+00:00",
    }
    text = as_text(summary)
    assert text.splitlines()[0] == "Pipeline 'Orders': run r1 FAILED"
    assert "Did not succeed: load" in text and "loaded" not in text
