"""List filters of the run lists whose choices read small tables, never the runs they filter."""

from __future__ import annotations

import uuid

from django.contrib import admin
from django.contrib.admin.utils import build_q_object_from_lookup_parameters

from django_etl.core import permissions
from django_etl.core.tenancy import codename


class ScopedChoiceFilter(admin.SimpleListFilter):
    """A filter whose choices read a small table (pipelines, organizations) scoped to what the user may view.

    Django's related-only filters list the values found in the listed rows: a DISTINCT over every run or task
    run the user can see, on every page (bench/dashboard.py: 30-60 ms at 80,000 runs). These read the pipelines
    or organizations table instead; a value that is not a UUID shows nothing (a mangled link, never an error).
    """

    lookup = ""  # the field of the listed model the chosen id filters

    def choices_queryset(self, request):
        raise NotImplementedError

    def lookups(self, request, model_admin):
        return [(str(pk), name) for pk, name in self.choices_queryset(request).values_list("pk", "name")]

    def queryset(self, request, queryset):
        value = self.value()
        if not value:
            return queryset
        try:
            chosen = uuid.UUID(value)
        except ValueError:
            return queryset.none()
        return queryset.filter(**{self.lookup: chosen})


class PipelineFilter(ScopedChoiceFilter):
    title = "pipeline"
    parameter_name = "pipeline"

    def choices_queryset(self, request):
        from django_etl.pipelines.models import Pipeline

        perm = codename("view", self.model_admin_opts)
        return permissions.permitted(Pipeline.objects.all(), request.user, perm).order_by("name")


class OrganizationFilter(ScopedChoiceFilter):
    title = "organization"
    parameter_name = "organization"

    def choices_queryset(self, request):
        from django_etl.core.models import Organization

        perm = codename("view", self.model_admin_opts)
        return permissions.permitted(Organization.objects.all(), request.user, perm).order_by("name")


def scoped_filter(base, lookup: str, opts):
    """``base`` filtering ``lookup``, its choices those the user may view on ``opts``' model."""
    return type(base.__name__, (base,), {"lookup": lookup, "model_admin_opts": opts})


class RunStartFilter(admin.DateFieldListFilter):
    """The task-run list's date filter, on the run's start: the partition key, and the run's own start too.

    ``run_started_at`` is a copy of the run's ``started_at``, so bounding both selects the same rows; the second
    lets PostgreSQL walk the run index ``(pipeline, -started_at)`` for one pipeline's period instead of every
    run of the pipeline (bench/dashboard.py).
    """

    def queryset(self, request, queryset):
        queryset = super().queryset(
            request, queryset
        )  # validates the values (a bad one: Django's error page)
        twin = {
            key.replace(self.field_path, "pipeline_run__started_at", 1): values
            for key, values in self.used_parameters.items()
            if key.startswith(f"{self.field_path}__")
        }
        return queryset.filter(build_q_object_from_lookup_parameters(twin)) if twin else queryset
