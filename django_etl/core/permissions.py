"""Membership roles are the permissions: what each role may do in its organization, and the backend that says so.

This module is the one place that decides who may do what (docs/security.md, "Admin roles and tenancy", shows
the same matrix). A permission holds for an object only when the user has a role granting it in the object's
organization; asked without an object, it holds when some membership grants it. Groups and per-user
permissions grant nothing: ``RoleBackend`` replaces Django's ``ModelBackend`` (it keeps its password check).
Active superusers pass every check before any backend is asked (Django's ``PermissionsMixin``).
"""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib.auth.backends import ModelBackend
from django.db.models import Model, Q, QuerySet

from django_etl.core.models import MembershipRole

# What a viewer sees: never credentials (secrets), never the member list.
VIEW = frozenset(
    {
        "core.view_organization",
        "connectors.view_connector",
        "pipelines.view_pipeline",
        "pipelines.view_pipelinestep",
        "runs.view_pipelinerun",
        "runs.view_taskrun",
        "monitoring.view_alert",
        "monitoring.view_alertrule",
        "monitoring.view_alertdelivery",
        "lineage.view_datalineage",
    }
)
# An editor shapes pipelines and steps, runs them (Run now, re-run failed tasks), resolves alerts ("change" on an
# alert is resolving it), and may test connectors and preview their rows (which shows source data).
EDIT = frozenset(
    {
        "pipelines.add_pipeline",
        "pipelines.change_pipeline",
        "pipelines.add_pipelinestep",
        "pipelines.change_pipelinestep",
        "pipelines.delete_pipelinestep",
        "monitoring.change_alert",
        "connectors.test_connector",
        "connectors.preview_connector",
        # Run a pipeline now and re-run a run's failed tasks in Airflow (django_etl/control/).
        "pipelines.run_pipeline",
        "runs.run_pipelinerun",
    }
)
# An admin also owns where data lives and the secrets to reach it, removes pipelines, and decides where the
# organization's alerts are sent (alert rules mail addresses and POST to webhooks outside the platform).
ADMINISTER = frozenset(
    {
        "pipelines.delete_pipeline",
        "monitoring.add_alertrule",
        "monitoring.change_alertrule",
        "monitoring.delete_alertrule",
        "monitoring.retry_alertdelivery",  # send a failed or refused delivery again (once it can succeed)
        "connectors.add_connector",
        "connectors.change_connector",
        "connectors.delete_connector",
        "connectors.view_credential",
        "connectors.add_credential",
        "connectors.change_credential",
        "connectors.delete_credential",
        "connectors.rotate_credential",
    }
)
# An owner also runs the organization and its members (invite, set roles, remove) and edits members who belong
# to no organization the owner does not own.
OWN = frozenset(
    {
        "core.change_organization",
        "core.view_organizationmembership",
        "core.add_organizationmembership",
        "core.change_organizationmembership",
        "core.delete_organizationmembership",
        "core.view_user",
        "core.change_user",
    }
)

ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    MembershipRole.VIEWER: VIEW,
    MembershipRole.EDITOR: VIEW | EDIT,
    MembershipRole.ADMIN: VIEW | EDIT | ADMINISTER,
    MembershipRole.OWNER: VIEW | EDIT | ADMINISTER | OWN,
}

# Every signed-in user may see and edit their own profile (the admin limits which fields).
SELF_PERMISSIONS = frozenset({"core.view_user", "core.change_user"})

# The lookup from each organization-owned model to its organization ("" for the organization itself).
ORGANIZATION_PATHS: dict[str, str] = {
    "core.organization": "",
    "core.organizationmembership": "organization",
    "connectors.connector": "organization",
    "connectors.credential": "organization",
    "pipelines.pipeline": "organization",
    "pipelines.pipelinestep": "pipeline__organization",
    "runs.pipelinerun": "pipeline__organization",
    "runs.taskrun": "pipeline_run__pipeline__organization",
    "monitoring.alert": "organization",  # filled for every alert, run-less ones too (issue 12)
    "monitoring.alertrule": "organization",
    "monitoring.alertdelivery": "organization",
    "lineage.datalineage": "source_task__pipeline_run__pipeline__organization",
}

USER_LABEL = "core.user"


def roles_of(user) -> dict:
    """Organization id -> role, for each membership of ``user`` (cached on the user object for the request)."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return {}
    cached = getattr(user, "_etl_roles", None)
    if cached is None:
        cached = dict(user.memberships.values_list("organization_id", "role"))
        user._etl_roles = cached
    return cached


def may_use_admin(user) -> bool:
    """Who may sign in to the admin: active superusers and staff (operators), and every member."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return False
    return user.is_superuser or user.is_staff or bool(roles_of(user))


def organizations_with(user, perms: str | Iterable[str]) -> list:
    """Ids of the organizations in which ``user``'s role grants any of ``perms``."""
    wanted = {perms} if isinstance(perms, str) else set(perms)
    return [org for org, role in roles_of(user).items() if wanted & ROLE_PERMISSIONS.get(role, frozenset())]


def organization_path(model: type[Model] | Model) -> str | None:
    """The lookup from ``model`` to its organization, or None for models no organization owns."""
    return ORGANIZATION_PATHS.get(model._meta.label_lower)


def organization_id_of(obj: Model):
    """The id of the organization ``obj`` belongs to, or None (no organization, or not one of its models)."""
    path = organization_path(obj)
    if path is None:
        return None
    if path == "":
        return obj.pk
    *hops, last = path.split("__")
    value = obj
    for hop in hops:
        value = getattr(value, hop, None)
        if value is None:
            return None
    return getattr(value, f"{last}_id", None)


def limit_to_organizations(queryset: QuerySet, organization_ids: Iterable) -> QuerySet:
    """``queryset`` restricted to objects of the given organizations (none for models no organization owns)."""
    path = organization_path(queryset.model)
    if path is None:
        return queryset.none()
    return queryset.filter(**{f"{path or 'pk'}__in": list(organization_ids)})


def permitted(queryset: QuerySet, user, perms: str | Iterable[str]) -> QuerySet:
    """The objects of ``queryset`` on which ``user`` holds one of ``perms`` (everything for superusers)."""
    if user.is_active and user.is_superuser:
        return queryset
    if queryset.model._meta.label_lower == USER_LABEL:
        return visible_users(queryset, user, perms)
    return limit_to_organizations(queryset, organizations_with(user, perms))


def visible_users(queryset: QuerySet, user, perms: str | Iterable[str] = "core.view_user") -> QuerySet:
    """Oneself, plus the members of organizations in which one's role grants ``perms`` on users."""
    if user.is_active and user.is_superuser:
        return queryset
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return queryset.none()
    organizations = organizations_with(user, perms)
    members = queryset.model._default_manager.filter(memberships__organization__in=organizations).values("pk")
    return queryset.filter(Q(pk__in=members) | Q(pk=user.pk))


def _user_permissions(user, target) -> set[str]:
    """What ``user`` may do to the account ``target``: their own profile, or members they alone govern."""
    if target.pk == user.pk:
        return set(SELF_PERMISSIONS)
    roles = roles_of(user)
    target_organizations = set(target.memberships.values_list("organization_id", flat=True))
    granted: set[str] = set()
    shared = [roles[org] for org in target_organizations if org in roles]
    if any("core.view_user" in ROLE_PERMISSIONS[role] for role in shared):
        granted.add("core.view_user")
    # Only an account that belongs to no organization the editor does not own, and is no operator.
    governs_all = bool(target_organizations) and all(
        "core.change_user" in ROLE_PERMISSIONS.get(roles.get(org), frozenset())
        for org in target_organizations
    )
    if governs_all and not (target.is_superuser or target.is_staff):
        granted.add("core.change_user")
    return granted


def permissions_for(user, obj: Model | None = None) -> set[str]:
    """Every permission ``user``'s roles grant: anywhere (``obj`` None) or on ``obj``."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return set()
    roles = roles_of(user)
    if obj is None:
        granted = set(SELF_PERMISSIONS)
        for role in set(roles.values()):
            granted |= ROLE_PERMISSIONS.get(role, frozenset())
        return granted
    if obj._meta.label_lower == USER_LABEL:
        return _user_permissions(user, obj)
    role = roles.get(organization_id_of(obj))
    return set(ROLE_PERMISSIONS.get(role, frozenset()))


class RoleBackend(ModelBackend):
    """Authenticates with username and password (as ModelBackend does); permissions come from roles only."""

    def get_user_permissions(self, user_obj, obj=None) -> set[str]:
        return set()

    def get_group_permissions(self, user_obj, obj=None) -> set[str]:
        return set()

    def get_all_permissions(self, user_obj, obj=None) -> set[str]:
        return permissions_for(user_obj, obj)

    def has_perm(self, user_obj, perm, obj=None) -> bool:
        return perm in permissions_for(user_obj, obj)

    def has_module_perms(self, user_obj, app_label) -> bool:
        return any(perm.startswith(f"{app_label}.") for perm in permissions_for(user_obj))

    def with_perm(self, perm, is_active=True, include_superusers=True, obj=None):
        from django.contrib.auth import get_user_model

        users = get_user_model()._default_manager
        roles = [role for role, granted in ROLE_PERMISSIONS.items() if perm in granted]
        query = Q(memberships__role__in=roles)
        if obj is not None:
            query &= Q(memberships__organization_id=organization_id_of(obj))
        if include_superusers:
            query |= Q(is_superuser=True)
        found = users.filter(query)
        if is_active is not None:
            found = found.filter(is_active=is_active)
        return found.distinct()
