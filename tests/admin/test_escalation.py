"""No escalation: members raise no one's rights, owners govern only their own organizations' members."""

from __future__ import annotations

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

pytestmark = pytest.mark.django_db


def user_form(user, **changes) -> dict:
    """A user change form as the admin posts it, with every operator field an attacker could add."""
    data = {
        "username": user.username,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "email": user.email,
        "is_active": "on",
        "is_staff": "on",
        "is_superuser": "on",
        "preferences": "{}",
        "memberships-TOTAL_FORMS": "0",
        "memberships-INITIAL_FORMS": "0",
        "memberships-MIN_NUM_FORMS": "0",
        "memberships-MAX_NUM_FORMS": "1000",
    }
    return data | changes


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def test_member_signs_in_without_staff_flag(client, tenants):
    viewer = tenants.a.members["viewer"]
    assert not viewer.is_staff
    response = client.post(
        reverse("admin:login"), {"username": viewer.username, "password": "pw-member-123", "next": "/admin/"}
    )
    assert response.status_code == 302 and response["Location"] == "/admin/"
    assert client.get(reverse("admin:pipelines_pipeline_changelist")).status_code == 200


def test_account_without_membership_cannot_sign_in(client, tenants):
    from django_etl.core.models import User

    User.objects.create_user("loner", "loner@example.com", "pw-loner-123")
    response = client.post(reverse("admin:login"), {"username": "loner", "password": "pw-loner-123"})
    assert (
        response.status_code == 200
        and "Please enter the correct username and password" in response.content.decode()
    )


def test_owner_cannot_make_herself_superuser_or_staff(client, tenants):
    owner = tenants.a.members["owner"]
    client.force_login(owner)
    response = client.post(
        reverse("admin:core_user_change", args=[owner.pk]), user_form(owner, first_name="Olive", groups=["1"])
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    owner.refresh_from_db()
    assert owner.first_name == "Olive"  # her own profile, yes
    assert not owner.is_superuser and not owner.is_staff
    page = client.get(reverse("admin:core_user_change", args=[owner.pk])).content.decode()
    assert 'name="is_superuser"' not in page and 'name="is_staff"' not in page and 'name="groups"' not in page


def test_nobody_but_a_superuser_sets_another_password(client, tenants, root):
    owner, viewer, shared = tenants.a.members["owner"], tenants.a.members["viewer"], tenants.shared
    client.force_login(owner)
    form = {"password1": "Hijack-pw-9876", "password2": "Hijack-pw-9876", "set_usable_password": "true"}
    for target, status in ((viewer, 403), (shared, 403), (root, 404)):
        response = client.post(reverse("admin:auth_user_password_change", args=[target.pk]), form)
        assert response.status_code == status, target
        target.refresh_from_db()
        assert not target.check_password("Hijack-pw-9876")
    own = client.get(reverse("admin:auth_user_password_change", args=[owner.pk]))
    assert own.status_code == 302 and own["Location"] == reverse("admin:password_change")


def test_owner_cannot_edit_an_account_that_belongs_to_another_organization(client, tenants):
    client.force_login(tenants.a.members["owner"])
    shared = tenants.shared
    response = client.post(
        reverse("admin:core_user_change", args=[shared.pk]), user_form(shared, email="evil@x.io")
    )
    assert response.status_code == 403
    shared.refresh_from_db()
    assert shared.email == "shared@example.com"
    page = client.get(reverse("admin:core_user_change", args=[shared.pk]))
    assert page.status_code == 200 and "canary" not in page.content.decode().lower()  # not its B membership
    assert client.get(reverse("admin:core_user_history", args=[shared.pk])).status_code == 403


def test_owner_edits_a_member_who_belongs_only_to_her_organization(client, tenants):
    client.force_login(tenants.a.members["owner"])
    editor = tenants.a.members["editor"]
    response = client.post(
        reverse("admin:core_user_change", args=[editor.pk]), user_form(editor, last_name="Renamed")
    )
    assert response.status_code == 302
    editor.refresh_from_db()
    assert editor.last_name == "Renamed" and not editor.is_superuser and not editor.is_staff


def test_member_cannot_add_herself_to_another_organization_through_the_inline(client, tenants):
    from django_etl.core.models import OrganizationMembership

    owner = tenants.a.members["owner"]
    client.force_login(owner)
    data = user_form(owner) | {
        "memberships-TOTAL_FORMS": "1",
        "memberships-0-organization": str(tenants.b.organization.pk),
        "memberships-0-role": "owner",
        "memberships-0-user": str(owner.pk),
    }
    client.post(reverse("admin:core_user_change", args=[owner.pk]), data)
    assert not OrganizationMembership.objects.filter(user=owner, organization=tenants.b.organization).exists()


def test_nobody_sets_their_own_role(client, tenants):
    from django_etl.core.models import OrganizationMembership

    owner = tenants.a.members["owner"]
    own = OrganizationMembership.objects.get(user=owner, organization=tenants.a.organization)
    client.force_login(owner)
    response = client.post(
        reverse("admin:core_organizationmembership_change", args=[own.pk]), {"role": "viewer"}
    )
    assert response.status_code == 403
    assert (
        client.post(
            reverse("admin:core_organizationmembership_delete", args=[own.pk]), {"post": "yes"}
        ).status_code
        == 403
    )
    own.refresh_from_db()
    assert own.role == "owner"


def test_owner_sets_roles_only_in_her_organization(client, tenants):
    from django_etl.core.models import OrganizationMembership

    client.force_login(tenants.a.members["owner"])
    shared_in_a = OrganizationMembership.objects.get(user=tenants.shared, organization=tenants.a.organization)
    shared_in_b = OrganizationMembership.objects.get(user=tenants.shared, organization=tenants.b.organization)
    # The user and organization of a membership are fixed; only the role changes.
    response = client.post(
        reverse("admin:core_organizationmembership_change", args=[shared_in_a.pk]),
        {
            "role": "editor",
            "organization": str(tenants.b.organization.pk),
            "user": str(tenants.b.members["owner"].pk),
        },
    )
    assert response.status_code == 302
    shared_in_a.refresh_from_db()
    assert (shared_in_a.role, shared_in_a.organization_id, shared_in_a.user_id) == (
        "editor",
        tenants.a.organization.pk,
        tenants.shared.pk,
    )
    response = client.post(
        reverse("admin:core_organizationmembership_change", args=[shared_in_b.pk]), {"role": "viewer"}
    )
    assert response.status_code == 404
    shared_in_b.refresh_from_db()
    assert shared_in_b.role == "owner"


def test_invite_answers_the_same_whether_or_not_the_account_exists(client, tenants):
    from django_etl.core.models import OrganizationMembership

    client.force_login(tenants.a.members["owner"])
    organization = tenants.a.organization
    answers = []
    for identifier in ("canary-b-viewer", "nobody-by-that-name", "canary-b-owner@canary-b.example"):
        response = client.post(
            reverse("admin:core_organizationmembership_add"),
            {"organization": str(organization.pk), "username_or_email": identifier, "role": "viewer"},
            follow=True,
        )
        assert response.redirect_chain[-1][0] == reverse("admin:core_organizationmembership_changelist")
        answers.append(messages_of(response))
    assert answers[0] == answers[1] == answers[2]
    assert answers[0][0].startswith("If an account with that username or email exists, it was added to")
    members = set(
        OrganizationMembership.objects.filter(organization=organization).values_list(
            "user__username", flat=True
        )
    )
    assert {"canary-b-viewer", "canary-b-owner"} <= members


def test_invite_refuses_another_organization_and_non_owners(client, tenants):
    from django_etl.core.models import OrganizationMembership

    client.force_login(tenants.a.members["owner"])
    response = client.post(
        reverse("admin:core_organizationmembership_add"),
        {"organization": str(tenants.b.organization.pk), "username_or_email": "acme-viewer", "role": "owner"},
    )
    assert response.status_code == 200 and "Select a valid choice" in response.content.decode()
    assert not OrganizationMembership.objects.filter(
        organization=tenants.b.organization, user=tenants.a.members["viewer"]
    ).exists()
    client.force_login(tenants.a.members["admin"])
    response = client.post(
        reverse("admin:core_organizationmembership_add"),
        {
            "organization": str(tenants.a.organization.pk),
            "username_or_email": "canary-b-owner",
            "role": "owner",
        },
    )
    assert response.status_code == 403


def test_viewer_actions_do_nothing(client, tenants):
    """Resolve, test and preview are not offered to viewers, and posting them anyway does nothing."""
    from django_etl.connectors.models import Connector, Credential
    from django_etl.monitoring.models import Alert

    client.force_login(tenants.a.members["viewer"])
    alert = next(o for o in tenants.a.objects if isinstance(o, Alert))
    connector = next(o for o in tenants.a.objects if isinstance(o, Connector) and o.connector_type == "file")
    credential = next(o for o in tenants.a.objects if isinstance(o, Credential))
    for changelist, action, obj in (
        ("monitoring_alert", "mark_resolved", alert),
        ("connectors_connector", "test_connection", connector),
        ("connectors_connector", "preview_sample_rows", connector),
    ):
        response = client.post(
            reverse(f"admin:{changelist}_changelist"),
            {"action": action, "_selected_action": [str(obj.pk)]},
            follow=True,
        )
        assert response.status_code == 200, action
        assert messages_of(response) in ([], ["No action selected."]), action  # no test result, no resolve
        assert "Acme row" not in response.content.decode()  # the preview's sample row
    alert.refresh_from_db()
    assert not alert.is_resolved
    before = credential.encrypted_data
    response = client.post(
        reverse("admin:connectors_credential_changelist"),
        {"action": "reencrypt_with_current_key", "_selected_action": [str(credential.pk)]},
    )
    assert response.status_code == 403
    credential.refresh_from_db()
    assert credential.encrypted_data == before


def test_forms_refuse_another_organizations_ids(client, tenants):
    """Posting B's ids as choices (organization, credential, pipeline) is an invalid choice; nothing is created."""
    from django_etl.connectors.models import Connector, Credential
    from django_etl.pipelines.models import Pipeline, PipelineStep

    client.force_login(tenants.a.members["owner"])
    b_credential = next(o for o in tenants.b.objects if isinstance(o, Credential))
    b_pipeline = next(o for o in tenants.b.objects if isinstance(o, Pipeline))
    connector = {"name": "stolen", "connector_type": "api", "config": '{"base_url": "http://127.0.0.1:9/"}'}
    for organization, credential in ((tenants.b.organization, ""), (tenants.a.organization, b_credential)):
        response = client.post(
            reverse("admin:connectors_connector_add"),
            connector
            | {"organization": str(organization.pk), "credential": str(getattr(credential, "pk", ""))},
        )
        assert response.status_code == 200 and "Select a valid choice" in response.content.decode()
    assert not Connector.objects.filter(name="stolen").exists()
    response = client.post(
        reverse("admin:pipelines_pipelinestep_add"),
        {
            "pipeline": str(b_pipeline.pk),
            "name": "stolen",
            "order_index": "9",
            "step_type": "notify",
            "config": '{"email": ["a@b.io"]}',
            "dependencies": "[]",
        },
    )
    assert response.status_code == 200 and "Select a valid choice" in response.content.decode()
    assert not PipelineStep.objects.filter(name="stolen").exists()


def test_bad_query_input_is_no_server_error(client, tenants):
    from django_etl.monitoring.models import Alert

    client.force_login(tenants.a.members["editor"])
    changelist = reverse("admin:monitoring_alert_changelist")
    assert client.get(changelist, {"q": "x\x00y"}).status_code == 400
    query = {
        "app_label": "core",
        "model_name": "organizationmembership",
        "field_name": "user",
        "term": "\x00",
    }
    assert client.get(reverse("admin:autocomplete"), query).status_code == 400
    alert = next(o for o in tenants.a.objects if isinstance(o, Alert))
    response = client.post(
        changelist, {"action": "mark_resolved", "_selected_action": ["not-a-uuid", "\x00", str(alert.pk)]}
    )
    assert response.status_code == 302
    alert.refresh_from_db()
    assert alert.is_resolved
    assert client.get(reverse("admin:monitoring_alert_change", args=["not-a-uuid"])).status_code == 404
