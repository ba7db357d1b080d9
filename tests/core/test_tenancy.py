"""The admin base classes: list filters offer only what the user's own rows refer to."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.test import RequestFactory

pytestmark = pytest.mark.django_db


def test_filter_on_a_related_value_offers_only_the_users_rows(
    user, organization, other_organization, make_step
):
    from django_etl.core.models import Organization, OrganizationMembership
    from django_etl.core.tenancy import OrganizationScopedAdmin
    from django_etl.pipelines.models import Pipeline, PipelineStep

    second = Organization.objects.create(name="Acme Two", slug="acme-two")
    OrganizationMembership.objects.create(user=user, organization=second, role="viewer")
    # Two choices of each are visible (a filter with one choice is not shown); Globex's are not.
    for name, owner in (("Ours", organization), ("Ours too", second), ("Theirs", other_organization)):
        pipeline = Pipeline.objects.create(
            name=name, organization=owner, created_by=user, status="draft", config={}
        )
        make_step("s", "notify", {"email": ["a@b.io"]}, 1, pipeline=pipeline)

    class StepsByPipelineName(OrganizationScopedAdmin):
        list_filter = ["pipeline__name", "pipeline__organization"]

    request = RequestFactory().get("/")
    request.user = user
    changelist = StepsByPipelineName(PipelineStep, admin.site).get_changelist_instance(request)
    by_name, by_organization = changelist.filter_specs
    assert sorted(by_name.lookup_choices) == ["Ours", "Ours too"]
    assert sorted(label for _, label in by_organization.lookup_choices) == ["Acme", "Acme Two"]
