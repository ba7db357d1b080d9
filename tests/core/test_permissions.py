"""RoleBackend: permissions come from the role in the object's organization, and from nothing else."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


@pytest.fixture
def member(organization, other_organization):
    from django_etl.core.models import OrganizationMembership, User

    person = User.objects.create_user("mia", "mia@example.com", "pw-mia-123")
    OrganizationMembership.objects.create(user=person, organization=organization, role="editor")
    OrganizationMembership.objects.create(user=person, organization=other_organization, role="viewer")
    return person


def test_role_backend_grants_per_organization(member, pipeline, other_organization, user):
    from django_etl.pipelines.models import Pipeline

    theirs = Pipeline.objects.create(
        name="Theirs", organization=other_organization, created_by=user, status="draft", config={}
    )
    assert member.has_perm("pipelines.change_pipeline", pipeline)
    assert not member.has_perm("pipelines.change_pipeline", theirs)
    assert member.has_perm("pipelines.view_pipeline", theirs)
    assert member.has_perm("pipelines.change_pipeline")  # somewhere
    assert not member.has_perm("connectors.view_credential")
    assert member.has_module_perms("pipelines") and not member.has_module_perms("auth")


def test_role_backend_ignores_groups_and_user_permissions(member):
    from django.contrib.auth.models import Group, Permission

    everything = Permission.objects.all()
    group = Group.objects.create(name="hand-made")
    group.permissions.set(everything)
    member.groups.add(group)
    member.user_permissions.set(everything)
    assert not member.has_perm("connectors.view_credential")
    assert not member.has_perm("core.add_user")


def test_role_backend_grants_nothing_to_inactive_members(member, pipeline):
    from django_etl.core import permissions

    member.is_active = False
    assert not member.has_perm("pipelines.view_pipeline", pipeline)
    assert not permissions.may_use_admin(member)


def test_with_perm_lists_members_whose_role_grants_it(member, user, organization, pipeline):
    from django.contrib.auth import get_user_model

    backend_users = get_user_model().objects.with_perm(
        "pipelines.change_pipeline", backend="django_etl.core.permissions.RoleBackend", obj=pipeline
    )
    assert set(backend_users) == {member, user}  # the editor and the owner of Acme
