"""Read-only admin for data lineage edges, and the dataset pages: which pipelines wrote and read a dataset."""

from __future__ import annotations

from django.contrib import admin
from django.http import Http404
from django.template.response import TemplateResponse
from django.urls import path

from django_etl.core import permissions
from django_etl.core.tenancy import ReadOnlyAdmin, codename
from django_etl.lineage import datasets
from django_etl.lineage.models import DataLineage


@admin.register(DataLineage)
class DataLineageAdmin(ReadOnlyAdmin):
    organization_path = "source_task__pipeline_run__pipeline__organization"
    list_display = [
        "created_at",
        "source_task",
        "target_task",
        "relationship_type",
        "handed_over",
        "pipeline_run",
    ]
    list_filter = ["relationship_type"]
    list_select_related = [
        "source_task__pipeline_step",
        "target_task__pipeline_step",
        "target_task__pipeline_run__pipeline",
    ]
    ordering = ["-created_at"]  # newest first (the console issue)
    change_list_template = "admin/lineage/datalineage/change_list.html"

    @admin.display(description="run")
    def pipeline_run(self, obj: DataLineage):
        return obj.target_task.pipeline_run

    @admin.display(description="datasets (columns)")
    def handed_over(self, obj: DataLineage) -> str:
        metadata = obj.metadata or {}
        names = ", ".join(metadata.get("datasets") or []) or "—"
        return f"{names} ({metadata.get('column_lineage') or 'unknown'})"

    # ------------------------------------------------------------ dataset pages
    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("datasets/", view(self.datasets_view), name="lineage_datasets"),
            path("datasets/dataset/", view(self.dataset_view), name="lineage_dataset"),
            *super().get_urls(),
        ]

    def _visible_task_runs(self, request):
        """The task runs of the user's organizations: what the dataset pages are built from."""
        from django_etl.runs.models import TaskRun

        if not self.has_view_permission(request):
            raise Http404("No datasets.")  # like a page that does not exist, as the tenancy rule says
        perms = [codename("view", TaskRun._meta), codename("change", TaskRun._meta)]
        return permissions.permitted(TaskRun.objects.all(), request.user, perms)

    def datasets_view(self, request):
        found = datasets.collect(self._visible_task_runs(request))
        rows = sorted(found.values(), key=lambda d: (d.kind == "staged", d.label.lower(), d.key))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Datasets",
            "datasets": [(d, datasets.dataset_url(d.key)) for d in rows],
            "looked_at": datasets.RECENT_TASK_RUNS,
        }
        return TemplateResponse(request, "admin/lineage/datasets.html", context)

    def dataset_view(self, request):
        key = request.GET.get("key", "")
        dataset = datasets.collect(self._visible_task_runs(request)).get(key) if key else None
        if dataset is None:  # unknown, or only another organization's: the same answer
            raise Http404("No dataset with this name in your organizations' runs.")
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"Dataset {dataset.label}",
            "dataset": dataset,
            "picture": datasets.dataset_picture(dataset).svg(f"Pipelines that wrote and read {dataset.key}"),
            "uses": dataset.ordered_uses(),
        }
        return TemplateResponse(request, "admin/lineage/dataset.html", context)
