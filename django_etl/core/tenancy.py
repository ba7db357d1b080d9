"""Server-side tenancy for the admin: the site members sign in to, and the base classes every admin uses.

Who may do what is decided once, by the membership roles of ``django_etl.core.permissions``. This module applies
that answer to everything an admin page offers: lists, object pages (another organization's object is a 404,
like one that does not exist), history, foreign-key choices, autocomplete, list filters, inlines and actions.
"""

from __future__ import annotations

import dataclasses
import functools

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.admin.options import ActionLocation
from django.contrib.admin.utils import get_fields_from_path
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError
from django.db import models
from django.http import Http404, HttpResponseBadRequest

from django_etl.core import permissions
from django_etl.core.jsonfields import SafeJSONField

JSON_FIELDS = {models.JSONField: {"form_class": SafeJSONField}}


class MemberAuthenticationForm(AdminAuthenticationForm):
    """The admin's sign-in: every active member may sign in, not only staff (permissions.may_use_admin)."""

    def confirm_login_allowed(self, user) -> None:
        AuthenticationForm.confirm_login_allowed(self, user)
        if not permissions.may_use_admin(user):
            # The same message as a wrong password: it does not say which accounts exist.
            raise ValidationError(
                self.error_messages["invalid_login"],
                code="invalid_login",
                params={"username": self.username_field.verbose_name},
            )


class TenantAdminSite(admin.AdminSite):
    """The admin site: members of any organization sign in; the page then shows what their roles allow."""

    login_form = MemberAuthenticationForm
    index_template = "admin/etl_index.html"  # the organization dashboard above the app list (runs/console.py)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # Context for the home page, added by the apps' admin modules (runs/admin.py: the dashboard), so that
        # this module, which every admin imports, imports none of them.
        self.index_sections: list = []

    def has_permission(self, request) -> bool:
        return permissions.may_use_admin(request.user)

    def index(self, request, extra_context=None):
        context = {}
        for section in self.index_sections:
            context.update(section(request))
        return super().index(request, {**context, **(extra_context or {})})

    def admin_view(self, view, cacheable=False):
        inner = super().admin_view(view, cacheable)

        @functools.wraps(inner)
        def refuse_nul(request, *args, **kwargs):
            # PostgreSQL cannot compare text with NUL in it: a search or filter with one would be a 500.
            if any(
                "\x00" in key or "\x00" in value for key, values in request.GET.lists() for value in values
            ):
                return HttpResponseBadRequest("NUL characters are not allowed in the query string.")
            return inner(request, *args, **kwargs)

        return refuse_nul


def codename(verb: str, opts) -> str:
    return f"{opts.app_label}.{verb}_{opts.model_name}"


class ScopedAllValuesFilter(admin.AllValuesFieldListFilter):
    """Offers the values found in the rows this user may see (Django's own reads every row of a related model)."""

    def __init__(self, field, request, params, model, model_admin, field_path):
        super().__init__(field, request, params, model, model_admin, field_path)
        self.lookup_choices = (
            model_admin.get_queryset(request)
            .distinct()
            .order_by(field_path)
            .values_list(field_path, flat=True)
        )


def scoped_list_filter(model, item):
    """A list_filter entry whose choices come only from the user's rows (related objects and values)."""
    if not isinstance(item, str):
        return item
    fields = get_fields_from_path(model, item)
    last = fields[-1]
    if last.is_relation:
        return (item, admin.RelatedOnlyFieldListFilter)
    crosses_relation = len(fields) > 1
    if crosses_relation and not (last.choices or isinstance(last, (models.BooleanField, models.DateField))):
        return (item, ScopedAllValuesFilter)
    return item


def choices_for(request, queryset, perms):
    """The objects of ``queryset`` a user may attach to what they add or change (``perms`` on the edited model)."""
    if queryset.model._meta.label_lower == permissions.USER_LABEL:
        return permissions.visible_users(queryset, request.user)
    return permissions.permitted(queryset, request.user, perms)


class RoleScopedMixin:
    """What a ModelAdmin and an inline share: the role decides, object by object; only permitted rows and choices."""

    formfield_overrides = JSON_FIELDS

    def has_role_permission(self, request, verb: str, obj=None) -> bool:
        return request.user.has_perm(codename(verb, self.opts), obj)

    def has_view_permission(self, request, obj=None) -> bool:
        return self.has_role_permission(request, "view", obj) or self.has_role_permission(
            request, "change", obj
        )

    def has_change_permission(self, request, obj=None) -> bool:
        return self.has_role_permission(request, "change", obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        return self.has_role_permission(request, "delete", obj)

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        return permissions.permitted(
            queryset, request.user, [codename("view", self.opts), codename("change", self.opts)]
        )

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        formfield = super().formfield_for_foreignkey(db_field, request, **kwargs)
        if formfield is not None and getattr(formfield, "queryset", None) is not None:
            perms = [codename("add", self.opts), codename("change", self.opts)]
            formfield.queryset = choices_for(request, formfield.queryset, perms)
        return formfield

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        formfield = super().formfield_for_manytomany(db_field, request, **kwargs)
        if formfield is not None and getattr(formfield, "queryset", None) is not None:
            perms = [codename("add", self.opts), codename("change", self.opts)]
            formfield.queryset = choices_for(request, formfield.queryset, perms)
        return formfield


class TenantAdminMixin(RoleScopedMixin):
    """Role permissions, object by object, and the user's organizations only, for a ModelAdmin."""

    def has_add_permission(self, request) -> bool:
        return self.has_role_permission(request, "add")

    def get_object(self, request, object_id, from_field=None):
        # Another organization's object answers exactly as a missing one: 404, not a redirect or a 403.
        obj = super().get_object(request, object_id, from_field)
        if obj is None:
            raise Http404(f"No {self.opts.verbose_name} with this id.")
        return obj

    def get_list_filter(self, request):
        return [scoped_list_filter(self.model, item) for item in super().get_list_filter(request)]

    def get_actions(self, request, action_location=ActionLocation.CHANGE_LIST):
        actions = super().get_actions(request, action_location=action_location)
        return {
            name: dataclasses.replace(action, func=self._scoped_action(action.func))
            for name, action in actions.items()
        }

    def _scoped_action(self, func):
        """Run ``func`` only on the selected objects whose organization role allows the action."""
        perms = [codename(verb, self.opts) for verb in getattr(func, "allowed_permissions", ("change",))]

        @functools.wraps(func)
        def scoped(modeladmin, request, queryset):
            allowed = permissions.permitted(queryset, request.user, perms)
            skipped = queryset.count() - allowed.count()
            if skipped:
                modeladmin.message_user(
                    request,
                    f"Skipped {skipped} selected object(s): your role does not allow this.",
                    messages.WARNING,
                )
            return func(modeladmin, request, allowed)

        return scoped

    def response_action(self, request, queryset, action_location=ActionLocation.CHANGE_LIST):
        # A selected id that is no valid key would make the queryset filter raise (a 500); it selects nothing.
        selected = request.POST.getlist(helpers.ACTION_CHECKBOX_NAME)
        valid = [value for value in selected if self._is_valid_key(value)]
        if len(valid) != len(selected):
            request.POST = request.POST.copy()
            request.POST.setlist(helpers.ACTION_CHECKBOX_NAME, valid)
        return super().response_action(request, queryset, action_location=action_location)

    def _is_valid_key(self, value: str) -> bool:
        try:
            self.opts.pk.to_python(value)
        except ValidationError:
            return False
        return "\x00" not in value


class OrganizationScopedAdmin(TenantAdminMixin, admin.ModelAdmin):
    """The admin of a model an organization owns (permissions.ORGANIZATION_PATHS says how)."""


class ReadOnlyAdmin(OrganizationScopedAdmin):
    """Run records are written by Airflow, never by hand: members with a role may only look."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class ScopedInlineMixin(RoleScopedMixin):
    """An inline checks the role in the parent object's organization and offers only the user's objects."""

    def has_add_permission(self, request, obj=None) -> bool:
        return self.has_role_permission(request, "add", obj)


class ScopedTabularInline(ScopedInlineMixin, admin.TabularInline):
    pass


class ScopedStackedInline(ScopedInlineMixin, admin.StackedInline):
    pass
