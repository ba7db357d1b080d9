"""Admin for alerts: read-only, except that a person can resolve them."""

from __future__ import annotations

from django.contrib import admin, messages
from django.utils import timezone

from django_etl.core.tenancy import OrganizationScopedAdmin
from django_etl.monitoring.models import Alert
from django_etl.runs import display


@admin.register(Alert)
class AlertAdmin(OrganizationScopedAdmin):
    organization_path = "organization"
    list_display = [
        "created_at",
        "level_badge",
        "alert_type",
        "short_message",
        "organization",
        "pipeline_run",
        "is_resolved",
    ]
    list_filter = ["is_resolved", "level", "alert_type", "organization"]
    search_fields = ["message"]
    ordering = ["-created_at"]  # newest first (the console issue)
    date_hierarchy = "created_at"
    list_select_related = ["pipeline_run__pipeline", "organization"]
    fields = [
        "level",
        "alert_type",
        "message",
        "metadata",
        "organization",
        "pipeline_run",
        "task_run",
        "created_at",
        "is_resolved",
        "resolved_at",
    ]
    readonly_fields = [f for f in fields if f != "is_resolved"]
    actions = ["mark_resolved"]

    @admin.display(description="level", ordering="level")
    def level_badge(self, obj: Alert):
        return display.level_badge(obj.level)  # the console's colours (runs/display.py)

    @admin.display(description="message")
    def short_message(self, obj: Alert) -> str:
        return obj.message if len(obj.message) <= 100 else obj.message[:99] + "…"

    # Resolving is the one change a person makes to an alert: editors and up (core/permissions.py).
    @admin.action(description="Mark selected alerts resolved", permissions=["change"])
    def mark_resolved(self, request, queryset) -> None:
        count = queryset.resolve()
        self.message_user(request, f"Resolved {count} alert(s).", messages.SUCCESS)

    def save_model(self, request, obj: Alert, form, change: bool) -> None:
        obj.resolved_at = (obj.resolved_at or timezone.now()) if obj.is_resolved else None
        super().save_model(request, obj, form, change)

    def has_add_permission(self, request, *args) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
