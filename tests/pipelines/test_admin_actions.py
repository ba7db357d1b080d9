"""The "Generate DAG files" admin action, and an admin save that regenerates the file with its new version."""

from __future__ import annotations

import json

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from tests.support.compiler_helpers import SHAPES, make_pipeline

pytestmark = pytest.mark.integration


@pytest.fixture
def dags(settings, tmp_path):
    settings.ETL_DAGS_FOLDER = tmp_path / "dags"
    return tmp_path / "dags"


@pytest.fixture
def admin_client_of(client):
    def login(user):
        user.is_staff = user.is_superuser = True
        user.save()
        client.force_login(user)
        return client

    return login


def run_action(client, pipelines):
    return client.post(
        reverse("admin:pipelines_pipeline_changelist"),
        {"action": "generate_dag_files", "_selected_action": [str(p.pk) for p in pipelines]},
        follow=True,
    )


def test_generate_dag_files_action_reports_through_messages(
    organization, user, file_connector, dags, admin_client_of
):
    good = make_pipeline(organization, user, SHAPES["linear"][0], name="Good")
    broken = make_pipeline(
        organization, user, SHAPES["linear"][0], name="Broken", config={"schedule": "never"}
    )
    untouched = make_pipeline(organization, user, SHAPES["linear"][0], name="Not selected")
    response = run_action(admin_client_of(user), [good, broken])
    texts = [(m.level_tag, str(m)) for m in get_messages(response.wsgi_request)]
    assert (
        "error",
        "pipeline 'Broken' config.schedule: 'never' is not a cron expression or one of "
        "@continuous, @daily, @hourly, @monthly, @once, @quarterly, @weekly, @yearly",
    ) in texts
    assert ("warning", "generate_dags: 1 created, 0 updated, 0 unchanged, 0 removed, 1 failed") in texts
    assert (dags / f"{good.dag_id}.py").exists()
    assert not (dags / f"{untouched.dag_id}.py").exists()


def test_generate_dag_files_action_removes_files_of_selected_drafts(
    organization, user, file_connector, dags, admin_client_of
):
    pipeline = make_pipeline(organization, user, SHAPES["linear"][0])
    client = admin_client_of(user)
    run_action(client, [pipeline])
    type(pipeline).objects.filter(pk=pipeline.pk).update(status="draft")
    response = run_action(client, [pipeline])
    texts = [str(m) for m in get_messages(response.wsgi_request)]
    assert texts == ["generate_dags: 0 created, 0 updated, 0 unchanged, 1 removed, 0 failed"]
    assert not (dags / f"{pipeline.dag_id}.py").exists()


def test_admin_save_regenerates_the_file_with_the_new_version(
    transactional_db, organization, user, file_connector, dags, settings, admin_client_of
):
    """Only a step changes: the version is bumped when the admin's batch ends, which must be before commit."""
    settings.ETL_REGENERATE_ON_SAVE = True
    pipeline = make_pipeline(organization, user, SHAPES["linear"][0])
    steps = list(pipeline.steps.order_by("order_index"))
    data = {
        "name": pipeline.name,
        "description": "",
        "organization": str(organization.pk),
        "status": "active",
        "config": json.dumps(pipeline.config),
        "metadata": json.dumps(pipeline.metadata),
        "steps-TOTAL_FORMS": str(len(steps)),
        "steps-INITIAL_FORMS": str(len(steps)),
        "steps-MIN_NUM_FORMS": "0",
        "steps-MAX_NUM_FORMS": "1000",
        "_save": "Save",
    }
    for i, step in enumerate(steps):
        config = {"sql": "select id from orders"} if step.name == "clean" else step.config
        data |= {
            f"steps-{i}-id": str(step.pk),
            f"steps-{i}-pipeline": str(pipeline.pk),
            f"steps-{i}-name": step.name,
            f"steps-{i}-order_index": str(step.order_index),
            f"steps-{i}-step_type": step.step_type,
            f"steps-{i}-config": json.dumps(config),
            f"steps-{i}-dependencies": "[]",
        }
    response = admin_client_of(user).post(
        reverse("admin:pipelines_pipeline_change", args=[pipeline.pk]), data
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    before = pipeline.version
    pipeline.refresh_from_db()
    assert pipeline.version != before
    text = (dags / f"{pipeline.dag_id}.py").read_text()
    assert "select id from orders" in text
    assert f"# Version:       {pipeline.version}" in text
