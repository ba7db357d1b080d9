"""TaskRun.logs: the tail of the try's log file, secrets masked, at most 64 KiB; a summary without a file."""

from __future__ import annotations

import json
import os

import pytest

from airflow_plugin import task_logs
from tests.airflow_plugin.conftest import RECORDER_DATABASES

TASK = {"task_id": "load", "try_number": 2, "map_index": -1, "state": "failed", "error": "boom"}


def test_capture_masks_secrets_and_keeps_the_last_64_kib():
    path = task_logs.log_path("pipeline_x", "manual__1", "load", 2)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as handle:
        handle.write("early line that falls off\n" * 5000)
        handle.write("connecting with password=s3cr3t-canary to the warehouse\n")
        handle.write("last line\n")
    text = task_logs.capture("pipeline_x", "manual__1", TASK, None, ["s3cr3t-canary"])
    assert "s3cr3t-canary" not in text
    assert "password=***" in text
    assert text.endswith("last line\n")
    assert len(text.encode()) <= task_logs.MAX_LOG_BYTES
    assert text.startswith("early line")  # cut at a line start


def test_capture_without_log_file_gives_a_masked_summary():
    task = {**TASK, "task_id": "never_logged", "error": "login failed for s3cr3t-canary"}
    text = task_logs.capture("pipeline_x", "manual__1", task, {"metrics": {"rows_out": 3}}, ["s3cr3t-canary"])
    summary = json.loads(text)
    assert summary["state"] == "failed"
    assert summary["metrics"] == {"rows_out": 3}
    assert "s3cr3t-canary" not in text


@pytest.mark.integration
@pytest.mark.django_db(transaction=True, databases=RECORDER_DATABASES)
def test_secrets_of_pipeline_are_the_organization_credential_values(pipeline, credential):
    from airflow_plugin.recorder_tasks import secrets_of_pipeline

    assert "s3cr3t-canary" in secrets_of_pipeline(pipeline.pk)
