"""The role matrix of docs/security.md, checked against the admin: role by model by permission by action.

The test reads the two tables of the "Admin roles and tenancy" section, so the documented matrix and the code
cannot drift apart: each role of Acme must hold exactly the documented permissions on Acme's objects, none on
organization B's, and see exactly the actions those permissions allow — through the admin's own methods and
through HTTP.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.contrib import admin
from django.test import RequestFactory
from django.urls import reverse

from tests.admin.conftest import ROLES

pytestmark = pytest.mark.django_db

DOC = Path(__file__).resolve().parents[2] / "docs" / "security.md"
VERBS = ("view", "add", "change", "delete", "test", "preview", "rotate", "run", "retry")
NONE = {"\u2013", "-", ""}  # an en dash, a hyphen or nothing: no permission


def _section() -> str:
    text = DOC.read_text()
    return text.split("## Admin roles and tenancy", 1)[1].split("\n## ", 1)[0]


def _table(header: str) -> list[list[str]]:
    lines = _section().splitlines()
    start = next(
        i for i, line in enumerate(lines) if line.replace(" ", "").startswith(header.replace(" ", ""))
    )
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return rows


def _verbs(cell: str) -> set[str]:
    words = {word.strip() for word in re.sub(r"\(.*?\)", "", cell).split(",")}
    return words - NONE


def documented_matrix() -> dict[str, dict[str, set[str]]]:
    """Model verbose name -> role -> permissions."""
    return {
        row[0]: dict(zip(ROLES, map(_verbs, row[1:]), strict=True)) for row in _table("| Model | viewer |")
    }


def documented_actions() -> dict[str, str]:
    """Action name -> the permission it needs."""
    return {row[0].strip("`"): row[2] for row in _table("| Action | Model | Needs |")}


def as_request(user):
    request = RequestFactory().get("/admin/")
    request.user = user
    return request


def granted(model_admin, request, obj) -> set[str]:
    """The permissions of VERBS the admin grants on ``obj`` (add: anywhere)."""
    result = set()
    for verb in VERBS:
        check = getattr(model_admin, f"has_{verb}_permission", None)
        if check is None:
            continue
        if check(request) if verb == "add" else check(request, obj):
            result.add(verb)
    return result


def sample(tenant, model, user):
    """The object of ``model`` a member of ``tenant`` is checked against (their own account for users)."""
    from django_etl.core.models import OrganizationMembership, User

    if model is User:
        return user
    if model is OrganizationMembership:  # someone else's membership: nobody changes their own role
        return next(o for o in tenant.objects if isinstance(o, model) and o.user_id != user.pk)
    return next(o for o in tenant.objects if isinstance(o, model))


def registered():
    import django_etl.urls  # noqa: F401  (registers the admins)

    return sorted(admin.site._registry.items(), key=lambda item: item[0]._meta.label)


def test_documented_matrix_names_every_registered_model():
    assert {model._meta.verbose_name for model, _ in registered()} == set(documented_matrix())


@pytest.mark.parametrize("role", ROLES)
def test_role_grants_exactly_the_documented_permissions(tenants, root, role):
    matrix, needs = documented_matrix(), documented_actions()
    user = tenants.a.members[role]
    for model, model_admin in registered():
        expected = matrix[model._meta.verbose_name][role]
        obj = sample(tenants.a, model, user)
        assert granted(model_admin, as_request(user), obj) == expected, (model, role)
        if model._meta.label != "core.User":
            foreign = sample(tenants.b, model, tenants.b.members["owner"])
            assert granted(model_admin, as_request(user), foreign) <= {"add"}, (model, role, "organization B")
            assert not model_admin.get_queryset(as_request(user)).filter(pk=foreign.pk).exists()
        every_action = set(model_admin.get_actions(as_request(root)))
        assert every_action <= set(needs), f"{model}: actions missing from the documented table"
        allowed = {name for name in every_action if needs[name] in expected}
        assert set(model_admin.get_actions(as_request(user))) == allowed, (model, role)


@pytest.mark.parametrize("role", ROLES)
def test_role_matrix_holds_over_http(client, tenants, role):
    """Changelist, add, change and delete pages answer as the matrix says: 200, 403, or 404 when not visible."""
    matrix = documented_matrix()
    user = tenants.a.members[role]
    client.force_login(user)
    for model, _ in registered():
        expected = matrix[model._meta.verbose_name][role]
        prefix = f"admin:{model._meta.app_label}_{model._meta.model_name}"
        obj = sample(tenants.a, model, user)
        where = f"{role} on {model._meta.verbose_name}"
        assert client.get(reverse(f"{prefix}_changelist")).status_code == (
            200 if "view" in expected else 403
        ), where
        assert client.get(reverse(f"{prefix}_add")).status_code == (200 if "add" in expected else 403), where
        change = client.get(reverse(f"{prefix}_change", args=[obj.pk]))
        assert change.status_code == (200 if "view" in expected else 404), where
        assert (b'name="_save"' in change.content) == ("change" in expected), where
        delete = client.get(reverse(f"{prefix}_delete", args=[obj.pk]))
        assert delete.status_code == (200 if "delete" in expected else 403 if "view" in expected else 404), (
            where
        )


def test_permissions_follow_the_role_in_each_organization(client, tenants):
    """Editor in Acme, viewer in B: changes and actions reach Acme's objects only."""
    from django_etl.core.models import OrganizationMembership
    from django_etl.monitoring.models import Alert
    from django_etl.pipelines.models import Pipeline

    user = tenants.a.members["editor"]
    OrganizationMembership.objects.create(user=user, organization=tenants.b.organization, role="viewer")
    pipeline_admin = admin.site._registry[Pipeline]
    ours, theirs = (sample(t, Pipeline, user) for t in (tenants.a, tenants.b))
    assert pipeline_admin.has_change_permission(as_request(user), ours)
    assert not pipeline_admin.has_change_permission(as_request(user), theirs)
    assert pipeline_admin.has_view_permission(as_request(user), theirs)

    client.force_login(user)
    alerts = [sample(t, Alert, user) for t in (tenants.a, tenants.b)]
    response = client.post(
        reverse("admin:monitoring_alert_changelist"),
        {"action": "mark_resolved", "_selected_action": [str(a.pk) for a in alerts]},
        follow=True,
    )
    assert "Skipped 1 selected object(s)" in response.content.decode()
    assert [Alert.objects.get(pk=a.pk).is_resolved for a in alerts] == [True, False]
    page = client.get(reverse("admin:pipelines_pipeline_change", args=[theirs.pk]))
    assert page.status_code == 200 and b'name="_save"' not in page.content
    response = client.post(reverse("admin:pipelines_pipeline_change", args=[theirs.pk]), {"name": "hijacked"})
    assert response.status_code == 403
    assert Pipeline.objects.get(pk=theirs.pk).name == theirs.name
