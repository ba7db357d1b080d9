"""Admin for connectors and credentials (credentials: admins and owners only; secrets are write-only)."""

from __future__ import annotations

from django.contrib import admin, messages
from django.http import Http404
from django.utils import timezone
from django.utils.html import format_html

from django_etl.connectors import admin_actions
from django_etl.connectors.expiry import expiry_text, warning_window
from django_etl.connectors.forms import CredentialForm
from django_etl.connectors.models import Connector, Credential, OrganizationPolicy
from django_etl.core.tenancy import JSON_FIELDS, OrganizationScopedAdmin


class ExpiryListFilter(admin.SimpleListFilter):
    """Expired, expiring within ETL_CREDENTIAL_EXPIRY_WARNING_DAYS, valid, or never expiring."""

    title = "expiry"
    parameter_name = "expiry"

    def lookups(self, request, model_admin):
        return [
            ("expired", "Expired"),
            ("soon", f"Expires within {warning_window().days} day(s)"),
            ("valid", "Valid"),
            ("never", "No expiry"),
        ]

    def queryset(self, request, queryset):
        now = timezone.now()
        soon = now + warning_window()
        match self.value():
            case "expired":
                return queryset.filter(expires_at__lte=now)
            case "soon":
                return queryset.filter(expires_at__gt=now, expires_at__lte=soon)
            case "valid":
                return queryset.filter(expires_at__gt=now)
            case "never":
                return queryset.filter(expires_at__isnull=True)
        return queryset


@admin.register(Credential)
class CredentialAdmin(OrganizationScopedAdmin):
    form = CredentialForm
    list_display = ["name", "organization", "encryption_key_id", "expiry", "is_expired", "created_at"]
    list_filter = [ExpiryListFilter, "organization", "encryption_key_id"]
    search_fields = ["name"]
    readonly_fields = ["encryption_key_id", "created_at"]
    fields = ["name", "organization", "secret", "expires_at", "encryption_key_id", "created_at"]
    actions = ["reencrypt_with_current_key"]

    def save_model(self, request, obj: Credential, form, change: bool) -> None:
        super().save_model(request, obj, form, change)
        for warning in form.warnings():
            self.message_user(request, warning, messages.WARNING)

    @admin.display(description="expires", ordering="expires_at")
    def expiry(self, obj: Credential):
        """Red once expired, amber within the warning window (the colours of Django's own messages)."""
        if obj.expires_at is None:
            return "never"
        now = timezone.now()
        if obj.expires_at <= now:
            colour, label = "#ba2121", "expired"
        elif obj.expires_at <= now + warning_window():
            colour, label = "#c77c00", "expires soon"
        else:
            return expiry_text(obj.expires_at)
        return format_html(
            '<span style="color: {}; font-weight: bold">{} ({})</span>',
            colour,
            expiry_text(obj.expires_at),
            label,
        )

    @admin.display(boolean=True, description="expired")
    def is_expired(self, obj: Credential) -> bool:
        return obj.is_expired

    def has_rotate_permission(self, request, obj=None) -> bool:
        return self.has_role_permission(request, "rotate", obj)

    @admin.action(description="Re-encrypt with the current key", permissions=["rotate"])
    def reencrypt_with_current_key(self, request, queryset) -> None:
        count = 0
        for credential in queryset:
            try:
                credential.rotate()
            except Exception as exc:  # the message names the credential; decrypt errors carry no secret
                self.message_user(request, str(exc), messages.ERROR)
                continue
            # One UPDATE, as rotate_credentials does: no audit-trail version, so history holds no token.
            Credential.objects.filter(pk=credential.pk).update(
                encrypted_data=credential.encrypted_data, encryption_key_id=credential.encryption_key_id
            )
            count += 1
        self.message_user(request, f"Re-encrypted {count} credential(s).", messages.SUCCESS)


@admin.register(Connector)
class ConnectorAdmin(OrganizationScopedAdmin):
    list_display = ["name", "connector_type", "organization", "credential", "is_active", "updated_at"]
    list_filter = ["connector_type", "is_active", "organization"]
    search_fields = ["name"]
    readonly_fields = ["created_by", "created_at", "updated_at"]
    fields = ["name", "connector_type", "organization", "config", "credential", "is_active", *readonly_fields]
    actions = [admin_actions.test_connection, admin_actions.preview_sample_rows]

    def has_test_permission(self, request, obj=None) -> bool:
        return self.has_role_permission(request, "test", obj)

    def has_preview_permission(self, request, obj=None) -> bool:
        return self.has_role_permission(request, "preview", obj)

    def save_model(self, request, obj: Connector, form, change: bool) -> None:
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)


@admin.register(OrganizationPolicy)
class OrganizationPolicyAdmin(admin.ModelAdmin):
    """Superusers only: an organization's members never see or widen their own network and file boundary.

    No role grants a permission on this model (core/permissions.py); these checks say so without asking.
    """

    formfield_overrides = JSON_FIELDS
    list_display = ["organization", "allowed_networks", "file_roots", "updated_at"]
    fields = ["organization", "allowed_networks", "file_roots", "note", "updated_at"]
    readonly_fields = ["updated_at"]

    @staticmethod
    def _superuser(request) -> bool:
        return bool(request.user.is_active and request.user.is_superuser)

    def has_module_permission(self, request) -> bool:
        return self._superuser(request)

    def has_view_permission(self, request, obj=None) -> bool:
        return self._superuser(request)

    def has_add_permission(self, request) -> bool:
        return self._superuser(request)

    def has_change_permission(self, request, obj=None) -> bool:
        return self._superuser(request)

    def has_delete_permission(self, request, obj=None) -> bool:
        return self._superuser(request)

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        return queryset if self._superuser(request) else queryset.none()

    def get_object(self, request, object_id, from_field=None):
        obj = super().get_object(request, object_id, from_field)
        if obj is None:  # as for every admin here: a 404, whether it exists or not
            raise Http404("No organization policy with this id.")
        return obj
