"""Server-side tenancy for the admin: a user sees and changes only the objects of their organizations."""

from __future__ import annotations

from django.contrib import admin

from django_etl.core.models import MembershipRole, Organization

EDITOR_ROLES = (MembershipRole.OWNER, MembershipRole.ADMIN, MembershipRole.EDITOR)


def organization_ids(user, *, roles=None) -> list:
    """Ids of the organizations a user belongs to (with one of ``roles`` if given)."""
    if not user.is_authenticated:
        return []
    memberships = user.memberships.all()
    if roles:
        memberships = memberships.filter(role__in=roles)
    return list(memberships.values_list("organization_id", flat=True))


class OrganizationScopedAdmin(admin.ModelAdmin):
    """Filters every list, lookup and choice by the user's organizations; superusers see everything.

    ``organization_path`` is the lookup from the model to its Organization. Viewers may look, not change.
    """

    organization_path = "organization"
    # Foreign keys to these models only offer objects of the user's organizations.
    scoped_choices = {
        "organization": "id",
        "credential": "organization",
        "connector": "organization",
        "pipeline": "organization",
    }

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        return queryset.filter(**{f"{self.organization_path}__in": organization_ids(request.user)})

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        formfield = super().formfield_for_foreignkey(db_field, request, **kwargs)
        path = self.scoped_choices.get(db_field.name)
        if formfield is not None and path and not request.user.is_superuser:
            allowed = organization_ids(request.user, roles=EDITOR_ROLES)
            formfield.queryset = formfield.queryset.filter(**{f"{path}__in": allowed})
        return formfield

    def _may_edit(self, request) -> bool:
        return request.user.is_superuser or bool(organization_ids(request.user, roles=EDITOR_ROLES))

    def has_add_permission(self, request, *args) -> bool:
        return super().has_add_permission(request, *args) and self._may_edit(request)

    def has_change_permission(self, request, obj=None) -> bool:
        if not super().has_change_permission(request, obj):
            return False
        if request.user.is_superuser:
            return True
        if obj is None:
            return self._may_edit(request)
        return self._organization_of(obj) in organization_ids(request.user, roles=EDITOR_ROLES)

    def has_delete_permission(self, request, obj=None) -> bool:
        return super().has_delete_permission(request, obj) and self.has_change_permission(request, obj)

    def _organization_of(self, obj):
        value = obj
        for part in self.organization_path.split("__"):
            value = getattr(value, part, None)
        return value.pk if isinstance(value, Organization) else value


class ReadOnlyAdmin(OrganizationScopedAdmin):
    """Run records are written by Airflow, never by hand."""

    def has_add_permission(self, request, *args) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
