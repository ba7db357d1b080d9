"""Admin for connectors and credentials (credentials: admins and owners only; secrets are write-only)."""

from __future__ import annotations

from django.contrib import admin, messages

from django_etl.connectors import admin_actions
from django_etl.connectors.forms import CredentialForm
from django_etl.connectors.models import Connector, Credential
from django_etl.core.tenancy import OrganizationScopedAdmin


@admin.register(Credential)
class CredentialAdmin(OrganizationScopedAdmin):
    form = CredentialForm
    list_display = ["name", "organization", "encryption_key_id", "expires_at", "is_expired", "created_at"]
    list_filter = ["organization", "encryption_key_id"]
    search_fields = ["name"]
    readonly_fields = ["encryption_key_id", "created_at"]
    fields = ["name", "organization", "secret", "expires_at", "encryption_key_id", "created_at"]
    actions = ["reencrypt_with_current_key"]

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
            credential.save(update_fields=["encrypted_data", "encryption_key_id"])
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
