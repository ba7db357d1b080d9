"""The admin app with the tenant admin site as its site: members of an organization sign in, not only staff."""

from __future__ import annotations

from django.contrib.admin.apps import SimpleAdminConfig


class AdminConfig(SimpleAdminConfig):
    # A dotted path: the site module imports forms and models, which load only once the apps are ready.
    default_site = "django_etl.core.tenancy.TenantAdminSite"
