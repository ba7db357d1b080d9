"""Admin for users, organizations and memberships."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin

from django_etl.core.models import Organization, OrganizationMembership, User
from django_etl.core.tenancy import OrganizationScopedAdmin, organization_ids


class MembershipInline(admin.TabularInline):
    model = OrganizationMembership
    extra = 0
    autocomplete_fields = ["user"]
    fields = ["user", "role", "created_at"]
    readonly_fields = ["created_at"]


class UserMembershipInline(MembershipInline):
    autocomplete_fields = ["organization"]
    fields = ["organization", "role", "created_at"]


@admin.register(Organization)
class OrganizationAdmin(OrganizationScopedAdmin):
    organization_path = "id"
    list_display = ["name", "slug", "member_count", "created_at"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    readonly_fields = ["created_at", "updated_at"]
    inlines = [MembershipInline]

    @admin.display(description="members")
    def member_count(self, obj: Organization) -> int:
        return obj.memberships.count()

    def has_add_permission(self, request, *args) -> bool:
        # Creating a tenant is an operator's job.
        return request.user.is_superuser


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    list_display = ["username", "email", "first_name", "last_name", "is_staff", "is_active", "last_login"]
    fieldsets = [
        *DjangoUserAdmin.fieldsets,
        ("Platform", {"fields": ["preferences", "last_login_ip"]}),
    ]
    readonly_fields = ["last_login_ip"]
    inlines = [UserMembershipInline]

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        # Staff see only the people they share an organization with.
        return queryset.filter(memberships__organization__in=organization_ids(request.user)).distinct()


@admin.register(OrganizationMembership)
class OrganizationMembershipAdmin(OrganizationScopedAdmin):
    list_display = ["user", "organization", "role", "created_at"]
    list_filter = ["role", "organization"]
    search_fields = ["user__username", "user__email", "organization__name"]
    autocomplete_fields = ["user", "organization"]
