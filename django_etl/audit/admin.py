"""History pages for the audited models: field-by-field changes, scoped like every admin page.

The admins of the audited models belong to their own apps; this module (loaded by ``admin.autodiscover()``
after theirs, since ``django_etl.audit`` comes after them in INSTALLED_APPS) re-registers each with
:class:`AuditedAdminMixin` in front, so no other admin module needs to know about history. The history of an
object the user may not see is a 404, exactly like its change page (core/tenancy.py).
"""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.http import Http404
from django.template.response import TemplateResponse
from simple_history.admin import SimpleHistoryAdmin

from django_etl.audit import queries
from django_etl.audit.models import AUDITED_MODELS


class AuditedAdminMixin(SimpleHistoryAdmin):
    """django-simple-history's history view and version page, behind the admin's own object lookup."""

    history_list_display = ["secret_change"]

    def _visible(self, request, object_id):
        # TenantAdminMixin.get_object answers 404 for another organization's object, as for a missing one.
        obj = self.get_object(request, unquote(object_id))
        if obj is None:
            raise Http404(f"No {self.opts.verbose_name} with this id.")
        return obj

    def history_view(self, request, object_id, extra_context=None):
        self._visible(request, object_id)
        return super().history_view(request, object_id, extra_context)

    def history_form_view(self, request, object_id, version_id, extra_context=None):
        """One version, read-only: who, when, the fields that changed from the version before, every value.

        It replaces simple-history's page, which renders the admin's edit form for an old version (and
        offers to revert to it): restoring versions is a later feature.
        """
        obj = self._visible(request, object_id)
        if not self.has_view_history_or_change_history_permission(request, obj):
            raise Http404(f"No {self.opts.verbose_name} with this id.")
        record = (
            self.model.history.filter(**{self.opts.pk.attname: obj.pk}, history_id=version_id).first()
            if str(version_id).isdigit()
            else None
        )
        if record is None:
            raise Http404("No such version.")
        context = {
            **self.admin_site.each_context(request),
            "title": f"{obj}: version of {record.history_date:%Y-%m-%d %H:%M:%S}",
            "opts": self.opts,
            "object": obj,
            "record": record,
            "changes": queries.changes(record),
            "values": queries.values(record),
            "secret_changed": getattr(record, "secret_changed", False),
            **(extra_context or {}),
        }
        return TemplateResponse(request, "admin/audit/version.html", context)

    @admin.display(description="secret")
    def secret_change(self, record) -> str:
        return "secret changed" if getattr(record, "secret_changed", False) else ""

    def get_history_list_display(self, request):
        return self.history_list_display if self.model._meta.label_lower == "connectors.credential" else []


def audit_registered_admins(site=admin.site) -> None:
    """Put AuditedAdminMixin in front of the registered admin of every audited model (once)."""
    for model in AUDITED_MODELS:
        current = site._registry.get(model)
        if current is None or isinstance(current, AuditedAdminMixin):
            continue
        audited = type(f"Audited{type(current).__name__}", (AuditedAdminMixin, type(current)), {})
        site.unregister(model)
        site.register(model, audited)


audit_registered_admins()
