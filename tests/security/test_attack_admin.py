"""A hostile member of organization A against the admin with crafted requests: B's ids in every place one fits."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.admin.conftest import CANARY, root, tenants  # noqa: F401 - the two organizations of tests/admin
from tests.admin.test_bad_json import page_data

pytestmark = pytest.mark.django_db


def of_b(tenants, model):  # noqa: F811
    return next(o for o in tenants.b.objects if type(o) is model)


def of_a(tenants, model):  # noqa: F811
    return next(o for o in tenants.a.objects if type(o) is model)


def test_editor_cannot_move_a_pipeline_or_its_steps_to_another_organization(client, tenants):  # noqa: F811
    from django_etl.pipelines.models import Pipeline, PipelineStep

    pipeline = of_a(tenants, Pipeline)
    b_step = of_b(tenants, PipelineStep)
    client.force_login(tenants.a.members["editor"])
    url = reverse("admin:pipelines_pipeline_change", args=[pipeline.pk])
    data = page_data(client.get(url))
    # The organization, and an inline form that claims one of B's steps as its own row.
    data["organization"] = str(tenants.b.organization.pk)
    data["steps-0-id"] = str(b_step.pk)
    response = client.post(url, data)
    assert response.status_code == 200  # the form again, with errors
    assert CANARY not in response.content.decode().lower()
    pipeline.refresh_from_db()
    b_step.refresh_from_db()
    assert pipeline.organization_id == tenants.a.organization.pk
    assert b_step.pipeline.organization_id == tenants.b.organization.pk


def test_admin_cannot_attach_another_organizations_credential_to_a_connector(client, tenants):  # noqa: F811
    from django_etl.connectors.models import Connector, Credential

    connector = next(o for o in tenants.a.objects if type(o) is Connector and o.connector_type == "api")
    client.force_login(tenants.a.members["admin"])
    url = reverse("admin:connectors_connector_change", args=[connector.pk])
    data = page_data(client.get(url)) | {"credential": str(of_b(tenants, Credential).pk)}
    response = client.post(url, data)
    assert response.status_code == 200 and "Select a valid choice" in response.content.decode()
    connector.refresh_from_db()
    assert connector.credential.organization_id == tenants.a.organization.pk


@pytest.mark.parametrize(
    ("model_path", "action"),
    [
        ("connectors.Connector", "delete_selected"),
        ("pipelines.Pipeline", "delete_selected"),
        ("monitoring.Alert", "mark_resolved"),
        ("connectors.Credential", "reencrypt_with_current_key"),
    ],
)
def test_actions_on_another_organizations_ids_touch_nothing(client, tenants, model_path, action):  # noqa: F811
    from django.apps import apps

    model = apps.get_model(model_path)
    b_objects = [o for o in tenants.b.objects if type(o) is model]
    before = {o.pk: model.objects.filter(pk=o.pk).values().first() for o in b_objects}
    client.force_login(tenants.a.members["owner"])
    url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
    for extra in ({}, {"select_across": "1"}):
        response = client.post(
            url,
            {"action": action, "_selected_action": [str(o.pk) for o in b_objects], "post": "yes", **extra},
        )
        assert response.status_code in (200, 302)
        assert CANARY not in response.content.decode().lower()
    assert {o.pk: model.objects.filter(pk=o.pk).values().first() for o in b_objects} == before


def test_another_organizations_history_and_delete_pages_are_404(client, tenants):  # noqa: F811
    from django_etl.connectors.models import Connector, Credential
    from django_etl.pipelines.models import Pipeline, PipelineStep

    client.force_login(tenants.a.members["owner"])
    for model in (Connector, Credential, Pipeline, PipelineStep):
        obj = of_b(tenants, model)
        prefix = f"admin:{model._meta.app_label}_{model._meta.model_name}"
        for view in ("history", "delete", "change"):
            assert client.get(reverse(f"{prefix}_{view}", args=[obj.pk])).status_code == 404, (model, view)
        assert client.post(reverse(f"{prefix}_delete", args=[obj.pk]), {"post": "yes"}).status_code == 404
        assert model.objects.filter(pk=obj.pk).exists()


@pytest.mark.parametrize(
    ("app", "model", "field"),
    [
        ("core", "organizationmembership", "user"),
        ("core", "organizationmembership", "organization"),
        ("core", "user", "organization"),
        ("connectors", "connector", "credential"),
        ("connectors", "connector", "organization"),
        ("pipelines", "pipeline", "organization"),
        ("pipelines", "pipelinestep", "pipeline"),
    ],
)
def test_autocomplete_offers_nothing_of_another_organization(client, tenants, app, model, field):  # noqa: F811
    for role in ("viewer", "editor", "admin", "owner"):
        client.force_login(tenants.a.members[role])
        for term in ("", "canary", "CANARY-B", str(tenants.b.organization.pk)[:8]):
            response = client.get(
                reverse("admin:autocomplete"),
                {"app_label": app, "model_name": model, "field_name": field, "term": term},
            )
            assert response.status_code in (200, 403, 404)
            assert CANARY not in response.content.decode().lower(), (role, field, term)


def test_member_cannot_raise_own_flags_or_groups_through_the_profile(client, tenants):  # noqa: F811
    editor = tenants.a.members["editor"]
    client.force_login(editor)
    url = reverse("admin:core_user_change", args=[editor.pk])
    data = page_data(client.get(url)) | {
        "is_superuser": "on",
        "is_staff": "on",
        "groups": ["1"],
        "user_permissions": ["1"],
        "username": "root2",
        "password": "pbkdf2_sha256$1$x$y",
        "last_login_ip": "1.2.3.4",
    }
    client.post(url, data)
    editor.refresh_from_db()
    assert (editor.is_superuser, editor.is_staff, editor.username) == (False, False, "acme-editor")
    assert not editor.groups.exists() and not editor.user_permissions.exists()
    assert editor.check_password("pw-member-123")


def test_owner_cannot_take_over_a_superuser_or_a_shared_account(client, tenants, root):  # noqa: F811
    client.force_login(tenants.a.members["owner"])
    for target in (root, tenants.shared):
        url = reverse("admin:core_user_change", args=[target.pk])
        response = client.post(url, {"email": "owner@acme.example", "is_active": "", "first_name": "x"})
        assert response.status_code in (403, 404)
        password = reverse("admin:auth_user_password_change", args=[target.pk])
        response = client.post(password, {"password1": "Taken-over-123", "password2": "Taken-over-123"})
        assert response.status_code in (403, 404)
        target.refresh_from_db()
        assert target.is_active and target.email != "owner@acme.example"
        assert not target.check_password("Taken-over-123")


def test_viewer_cannot_test_or_preview_a_connector(client, tenants):  # noqa: F811
    from django_etl.connectors.models import Connector

    connector = of_a(tenants, Connector)
    client.force_login(tenants.a.members["viewer"])
    url = reverse("admin:connectors_connector_changelist")
    for action in ("test_connection", "preview_sample_rows"):
        response = client.post(url, {"action": action, "_selected_action": [str(connector.pk)]}, follow=True)
        page = response.content.decode()
        assert "Acme row" not in page  # the source rows a preview would show
        assert f'value="{action}"' not in page  # not even offered
