"""Admin for users, organizations and memberships: owners run their members; nobody raises their own rights.

Only superusers create accounts and organizations, set passwords of others, and edit the operator flags
(``is_superuser``, ``is_staff``). Members edit their own profile (the password through the usual password change).
Owners invite existing accounts by username or email, set roles in the organizations they own (not their own
role), and edit only accounts that belong to no organization they do not own.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse

from django_etl.core import permissions
from django_etl.core.forms import InviteForm
from django_etl.core.models import Organization, OrganizationMembership, User
from django_etl.core.tenancy import OrganizationScopedAdmin, ScopedTabularInline, TenantAdminMixin

# Permissions come from membership roles only (core/permissions.py): groups would grant nothing.
if admin.site.is_registered(Group):
    admin.site.unregister(Group)


class MembershipInline(ScopedTabularInline):
    """The members on the organization's page; owners change roles on each membership's own page."""

    model = OrganizationMembership
    extra = 0
    autocomplete_fields = ["user"]
    fields = ["user", "role", "created_at"]
    readonly_fields = ["created_at"]
    show_change_link = True

    def has_add_permission(self, request, obj=None) -> bool:
        return request.user.is_superuser  # owners invite by username or email (the membership add page)

    def has_change_permission(self, request, obj=None) -> bool:
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None) -> bool:
        return request.user.is_superuser


class UserMembershipInline(admin.TabularInline):
    """A user's memberships, on the user's page: only those in organizations the viewer may see them in."""

    model = OrganizationMembership
    extra = 0
    autocomplete_fields = ["organization"]
    fields = ["organization", "role", "created_at"]
    readonly_fields = ["created_at"]

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        owned = permissions.organizations_with(request.user, "core.view_organizationmembership")
        return queryset.filter(Q(organization__in=owned) | Q(user=request.user))

    def has_view_permission(self, request, obj=None) -> bool:
        return request.user.is_superuser or obj is None or request.user.has_perm("core.view_user", obj)

    def has_add_permission(self, request, obj=None) -> bool:
        return request.user.is_superuser

    def has_change_permission(self, request, obj=None) -> bool:
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None) -> bool:
        return request.user.is_superuser


@admin.register(Organization)
class OrganizationAdmin(OrganizationScopedAdmin):
    list_display = ["name", "slug", "member_count", "created_at"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    readonly_fields = ["created_at", "updated_at"]
    inlines = [MembershipInline]
    change_form_template = "admin/core/organization/change_form.html"

    @admin.display(description="members")
    def member_count(self, obj: Organization) -> int:
        return obj.memberships.count()

    def has_add_permission(self, request) -> bool:
        return request.user.is_superuser  # creating a tenant is an operator's job

    def has_delete_permission(self, request, obj=None) -> bool:
        return request.user.is_superuser

    def get_readonly_fields(self, request, obj=None):
        # The slug is unique across tenants and names the DAGs: an operator's to change.
        if request.user.is_superuser:
            return self.readonly_fields
        return [*self.readonly_fields, "slug"]

    def get_prepopulated_fields(self, request, obj=None):
        return self.prepopulated_fields if request.user.is_superuser else {}

    def change_view(self, request, object_id, form_url="", extra_context=None):
        organization = self.get_object(request, unquote(object_id))
        may_invite = request.user.has_perm("core.add_organizationmembership", organization)
        invite_url = reverse("admin:core_organizationmembership_add") + f"?organization={organization.pk}"
        extra_context = {**(extra_context or {}), "invite_url": invite_url if may_invite else None}
        return super().change_view(request, object_id, form_url, extra_context)


@admin.register(User)
class UserAdmin(TenantAdminMixin, DjangoUserAdmin):
    fieldsets = [
        (None, {"fields": ["username", "password"]}),
        ("Personal info", {"fields": ["first_name", "last_name", "email"]}),
        ("Operator flags", {"fields": ["is_active", "is_staff", "is_superuser"]}),
        ("Important dates", {"fields": ["last_login", "date_joined"]}),
        ("Platform", {"fields": ["preferences", "last_login_ip"]}),
    ]
    own_profile_fieldsets = [
        (None, {"fields": ["username"]}),
        ("Personal info", {"fields": ["first_name", "last_name", "email"]}),
        ("Platform", {"fields": ["preferences"]}),
        ("Important dates", {"fields": ["last_login", "date_joined"]}),
    ]
    member_fieldsets = [
        (None, {"fields": ["username"]}),
        ("Personal info", {"fields": ["first_name", "last_name", "email"]}),
        ("Status", {"fields": ["is_active"]}),
        ("Important dates", {"fields": ["last_login", "date_joined"]}),
    ]
    readonly_fields = ["last_login_ip"]
    list_display = ["username", "email", "first_name", "last_name", "is_staff", "is_active", "last_login"]
    list_filter = ["is_staff", "is_superuser", "is_active"]
    inlines = [UserMembershipInline]

    def get_fieldsets(self, request, obj=None):
        if obj is None or request.user.is_superuser:
            return super().get_fieldsets(request, obj)
        return self.own_profile_fieldsets if obj.pk == request.user.pk else self.member_fieldsets

    def get_readonly_fields(self, request, obj=None):
        if request.user.is_superuser:
            return self.readonly_fields
        return [*self.readonly_fields, "username", "last_login", "date_joined"]

    def get_list_display(self, request):
        if request.user.is_superuser:
            return self.list_display
        return ["username", "email", "first_name", "last_name", "is_active"]

    def get_list_filter(self, request):
        return super().get_list_filter(request) if request.user.is_superuser else ["is_active"]

    def user_change_password(self, request, id, form_url=""):
        # Nobody but a superuser sets another account's password; members change their own with the old one.
        if request.user.is_superuser:
            return super().user_change_password(request, id, form_url)
        user = self.get_object(request, unquote(id))
        if user.pk == request.user.pk:
            return HttpResponseRedirect(reverse("admin:password_change"))
        raise PermissionDenied

    def history_view(self, request, object_id, extra_context=None):
        # The history of a shared account can name its other organizations: only for whoever may edit it.
        user = self.get_object(request, unquote(object_id))
        if not (request.user.is_superuser or self.has_change_permission(request, user)):
            raise PermissionDenied
        return super().history_view(request, object_id, extra_context)


@admin.register(OrganizationMembership)
class OrganizationMembershipAdmin(OrganizationScopedAdmin):
    list_display = ["user", "organization", "role", "created_at"]
    list_filter = ["role", "organization"]
    search_fields = ["user__username", "user__email", "organization__name"]
    autocomplete_fields = ["user", "organization"]
    fields = ["user", "organization", "role", "created_at"]
    readonly_fields = ["created_at"]
    invite_template = "admin/core/organizationmembership/invite.html"

    def has_change_permission(self, request, obj=None) -> bool:
        # Members do not set their own role (an owner would otherwise be one click from any role).
        own = obj is not None and obj.user_id == request.user.pk and not request.user.is_superuser
        return not own and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        own = obj is not None and obj.user_id == request.user.pk and not request.user.is_superuser
        return not own and super().has_delete_permission(request, obj)

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and not request.user.is_superuser:
            return [*self.readonly_fields, "user", "organization"]
        return self.readonly_fields

    def add_view(self, request, form_url="", extra_context=None):
        if request.user.is_superuser:
            return super().add_view(request, form_url, extra_context)
        return self.invite_view(request)

    def invite_view(self, request):
        """Owners add existing accounts by username or email; the answer never says whether one exists."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        owned = permissions.permitted(
            Organization.objects.all(), request.user, "core.add_organizationmembership"
        )
        if request.method == "POST":
            form = InviteForm(request.POST, organizations=owned)
            if form.is_valid():
                membership = form.save()
                if membership is not None:
                    self.log_addition(request, membership, [{"added": {}}])
                self.message_user(request, form.outcome_message(), messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:core_organizationmembership_changelist"))
        else:
            initial = (
                {"organization": request.GET.get("organization")} if "organization" in request.GET else {}
            )
            form = InviteForm(initial=initial, organizations=owned)
        context = {
            **self.admin_site.each_context(request),
            "title": "Invite a member",
            "opts": self.opts,
            "form": form,
        }
        return TemplateResponse(request, self.invite_template, context)
