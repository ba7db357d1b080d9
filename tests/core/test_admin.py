"""The admin: every model registered and browsable; tenancy enforced on the server; secrets write-only."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.urls import reverse

pytestmark = pytest.mark.django_db


@pytest.fixture
def superuser(db):
    from django_etl.core.models import User

    return User.objects.create_superuser("root", "root@example.com", "pw-root-123")


@pytest.fixture
def staff_member(user, organization):
    """An owner of Acme: no staff flag, no hand-given permission — the role is the permission."""
    return user


def test_every_model_is_registered():
    from django.apps import apps

    import django_etl.urls  # noqa: F401  (the web process registers the admins when it loads its URLs)

    # Derived caches the console reads (the daily rollup and its mark), and the retention's platform-wide
    # state of archived months (manage_partitions reports it; no organization's member may see it).
    internal = {"runs.StepDay", "runs.RollupMark", "runs.PartitionArchive"}
    for label in ("core", "connectors", "pipelines", "runs", "monitoring", "lineage"):
        for model in apps.get_app_config(label).get_models():
            if model._meta.label in internal:
                continue
            assert admin.site.is_registered(model), model


def test_changelists_render_for_superuser(client, superuser, pipeline, credential, file_connector):
    client.force_login(superuser)
    for name in (
        "core_organization",
        "core_user",
        "connectors_connector",
        "connectors_credential",
        "pipelines_pipeline",
        "runs_pipelinerun",
        "runs_taskrun",
        "monitoring_alert",
        "lineage_datalineage",
    ):
        response = client.get(reverse(f"admin:{name}_changelist"))
        assert response.status_code == 200, name
    response = client.get(reverse("admin:pipelines_pipeline_change", args=[pipeline.pk]))
    assert response.status_code == 200


def test_member_sees_only_own_organization(client, staff_member, pipeline, other_organization, superuser):
    from django_etl.pipelines.models import Pipeline

    theirs = Pipeline.objects.create(
        name="Their secret pipeline",
        organization=other_organization,
        created_by=superuser,
        status="draft",
        config={},
    )
    client.force_login(staff_member)
    listing = client.get(reverse("admin:pipelines_pipeline_changelist")).content.decode()
    assert pipeline.name in listing and theirs.name not in listing
    assert client.get(reverse("admin:pipelines_pipeline_change", args=[theirs.pk])).status_code == 404
    assert not Pipeline.objects.filter(pk=theirs.pk, name="hacked").exists()
    response = client.post(reverse("admin:pipelines_pipeline_change", args=[theirs.pk]), {"name": "hacked"})
    assert response.status_code == 404
    theirs.refresh_from_db()
    assert theirs.name == "Their secret pipeline"


def test_viewer_cannot_change(client, staff_member, organization, pipeline):
    staff_member.memberships.update(role="viewer")
    client.force_login(staff_member)
    response = client.get(reverse("admin:pipelines_pipeline_change", args=[pipeline.pk]))
    assert response.status_code == 200
    assert b'name="_save"' not in response.content


def test_credential_secret_is_write_only_and_stored_encrypted(client, superuser, organization):
    from django_etl.connectors.models import Credential

    client.force_login(superuser)
    response = client.post(
        reverse("admin:connectors_credential_add"),
        {"name": "api token", "organization": organization.pk, "secret": '{"token": "canary-abc-123"}'},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    credential = Credential.objects.get(name="api token")
    assert credential.decrypt_data() == {"token": "canary-abc-123"}
    page = client.get(reverse("admin:connectors_credential_change", args=[credential.pk])).content.decode()
    assert "canary-abc-123" not in page and credential.encrypted_data not in page
    # Saving without a new secret keeps the old one.
    response = client.post(
        reverse("admin:connectors_credential_change", args=[credential.pk]),
        {"name": "api token v2", "organization": organization.pk, "secret": ""},
    )
    assert response.status_code == 302
    credential.refresh_from_db()
    assert credential.name == "api token v2" and credential.decrypt_data() == {"token": "canary-abc-123"}


def test_credential_bad_json_error_does_not_echo_secret(client, superuser, organization):
    client.force_login(superuser)
    response = client.post(
        reverse("admin:connectors_credential_add"),
        {"name": "x", "organization": organization.pk, "secret": '{"token": canary-xyz'},
    )
    body = response.content.decode()
    assert response.status_code == 200 and "Not valid JSON" in body
    assert body.count("canary-xyz") == 0


def test_alert_can_be_resolved(client, superuser, pipeline):
    from django_etl.monitoring.models import Alert
    from django_etl.runs.models import PipelineRun

    run = PipelineRun.objects.create(pipeline=pipeline, trigger_type="manual")
    alert = Alert.objects.create(
        pipeline_run=run, level="critical", alert_type="pipeline_failed", message="x"
    )
    client.force_login(superuser)
    response = client.post(
        reverse("admin:monitoring_alert_changelist"),
        {"action": "mark_resolved", "_selected_action": [alert.pk]},
    )
    assert response.status_code == 302
    alert.refresh_from_db()
    assert alert.is_resolved and alert.resolved_at is not None


def test_pipeline_admin_rejects_step_cycle(client, superuser, pipeline, make_step):
    a = make_step("a", "notify", {"email": ["a@b.io"]}, 1)
    b = make_step("b", "notify", {"email": ["a@b.io"]}, 2, dependencies=[str(a.pk)])
    client.force_login(superuser)
    data = {
        "name": pipeline.name,
        "description": "",
        "organization": pipeline.organization_id,
        "status": "active",
        "config": '{"schedule": "@daily"}',
        "metadata": "{}",
        "steps-TOTAL_FORMS": "2",
        "steps-INITIAL_FORMS": "2",
        "steps-MIN_NUM_FORMS": "0",
        "steps-MAX_NUM_FORMS": "1000",
    }
    for i, (step, deps) in enumerate(((a, [str(b.pk)]), (b, [str(a.pk)]))):
        data.update(
            {
                f"steps-{i}-id": str(step.pk),
                f"steps-{i}-pipeline": str(pipeline.pk),
                f"steps-{i}-name": step.name,
                f"steps-{i}-order_index": str(step.order_index),
                f"steps-{i}-step_type": "notify",
                f"steps-{i}-config": '{"email": ["a@b.io"]}',
                f"steps-{i}-dependencies": f'["{deps[0]}"]',
            }
        )
    response = client.post(reverse("admin:pipelines_pipeline_change", args=[pipeline.pk]), data)
    assert response.status_code == 200
    assert "dependency cycle" in response.content.decode()
    a.refresh_from_db()
    assert a.dependencies == []  # nothing saved
