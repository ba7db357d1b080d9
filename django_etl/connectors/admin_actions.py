"""Admin actions for connectors: "Test connection" and "Preview sample rows".

Each names the role permission it needs (``test``, ``preview``: editors and up); the admin base class runs it only
on the selected connectors of organizations where the user holds that permission (core/tenancy.py).
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.template.response import TemplateResponse

from django_etl.connectors import probe

PREVIEW_ROWS = 10


@admin.action(description="Test connection", permissions=["test"])
def test_connection(modeladmin, request, queryset) -> None:
    for connector in queryset:
        result = probe.test_connection(connector)
        level = messages.SUCCESS if result.ok else messages.ERROR
        modeladmin.message_user(request, result.message if result.ok else f"Failed: {result.message}", level)


test_connection.__test__ = False  # an admin action, not a pytest test


@admin.action(description="Preview sample rows", permissions=["preview"])
def preview_sample_rows(modeladmin, request, queryset):
    connectors = list(queryset[:2])
    if len(connectors) != 1:
        modeladmin.message_user(request, "Select exactly one connector to preview.", messages.WARNING)
        return None
    connector = connectors[0]
    if connector.connector_type == "api":
        modeladmin.message_user(
            request, f"{connector.name}: API connectors have no preview.", messages.WARNING
        )
        return None
    result = probe.preview(connector, PREVIEW_ROWS)
    if not result.ok:
        modeladmin.message_user(request, f"Failed: {result.message}", messages.ERROR)
        return None
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": f"Sample rows of {connector.name}",
        "opts": modeladmin.model._meta,
        "connector": connector,
        "result": result,
    }
    return TemplateResponse(request, "admin/connectors/connector/preview.html", context)
