"""TaskRun.logs: the tail of the try's log file, secrets masked, at most 64 KiB; a summary without a file."""

from __future__ import annotations

import json
import os
from dataclasses import replace

import pytest

from airflow_plugin.writeback import task_logs
from airflow_plugin.writeback.events import TaskInfo
from airflow_plugin.writeback.tasks import secrets_of_pipeline
from tests.airflow_plugin.conftest import RECORDER_DATABASES

TASK = TaskInfo(task_id="load", try_number=2, map_index=-1, state="failed", error="boom")


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
    task = replace(TASK, task_id="never_logged", error="login failed for s3cr3t-canary")
    text = task_logs.capture("pipeline_x", "manual__1", task, {"metrics": {"rows_out": 3}}, ["s3cr3t-canary"])
    summary = json.loads(text)
    assert summary["state"] == "failed"
    assert summary["metrics"] == {"rows_out": 3}
    assert "s3cr3t-canary" not in text


@pytest.mark.integration
@pytest.mark.django_db(transaction=True, databases=RECORDER_DATABASES)
def test_secrets_of_pipeline_are_the_organization_credential_values(pipeline, credential):
    assert "s3cr3t-canary" in secrets_of_pipeline(pipeline.pk)


@pytest.mark.integration
@pytest.mark.django_db(transaction=True, databases=RECORDER_DATABASES)
def test_secrets_of_pipeline_leave_login_names_unmasked(pipeline, organization):
    """TaskRun.logs mask by the rule Airflow's logs use: a password is a secret, a login name is not."""
    from django_etl.connectors.models import Credential

    Credential.objects.create_encrypted(
        name="replica login",
        organization=organization,
        data={"username": "reporting_reader", "password": "another-s3cret", "api": {"token": "tok-12345"}},
    )
    secrets = secrets_of_pipeline(pipeline.pk)
    assert {"another-s3cret", "tok-12345"} <= set(secrets)
    assert "reporting_reader" not in secrets
    line = task_logs.mask("connect reporting_reader:another-s3cret", secrets)
    assert line == "connect reporting_reader:***"
