"""URL routes: the Django admin is the platform's configuration UI; the webhook trigger (django_etl/control/)."""

from __future__ import annotations

from django.contrib import admin
from django.urls import path
from django.views.generic import RedirectView

from django_etl.control import webhook

# Admin modules load when the URLs do (the web process), not at django.setup(): task processes that only
# record runs or read connectors skip importing every admin, form and the DAG compiler.
admin.autodiscover()

admin.site.site_header = "Django ETL"
admin.site.site_title = "Django ETL"
admin.site.index_title = "Pipelines, connectors and runs"

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("admin/", admin.site.urls),
    path("hooks/pipelines/<str:endpoint_id>/trigger", webhook.trigger, name="webhook-trigger"),
]
