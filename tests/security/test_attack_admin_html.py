"""Stored HTML in every name a tenant types: no admin page renders it as markup (Django escapes it everywhere)."""

from __future__ import annotations

import pytest

from tests.admin.conftest import root, tenants  # noqa: F401 - the two organizations of tests/admin
from tests.admin.test_walk import objects_by_model
from tests.admin.walk import Walk, walk_site

pytestmark = pytest.mark.django_db

PAYLOAD = "<img src=x onerror=alert(1)>\"'><svg onload=alert(2)>"


def plant(tenants) -> None:  # noqa: F811
    """Acme's own objects, named and described with markup by one of its editors."""
    from django_etl.connectors.models import Connector
    from django_etl.lineage.models import DataLineage
    from django_etl.monitoring.models import Alert, AlertRule
    from django_etl.pipelines.models import Pipeline, PipelineStep
    from django_etl.runs.models import TaskRun

    for index, obj in enumerate(tenants.a.objects):
        if isinstance(obj, Connector | Pipeline | PipelineStep | AlertRule):
            obj.name = f"{PAYLOAD} {index}"[:200]
            type(obj).objects.filter(pk=obj.pk).update(name=obj.name)
        if isinstance(obj, Pipeline):
            Pipeline.objects.filter(pk=obj.pk).update(
                description=PAYLOAD, metadata={"tags": [PAYLOAD]}, config={"schedule": "@daily"}
            )
        if isinstance(obj, Alert):
            Alert.objects.filter(pk=obj.pk).update(message=PAYLOAD, metadata={"note": PAYLOAD})
        if isinstance(obj, TaskRun):
            TaskRun.objects.filter(pk=obj.pk).update(logs=PAYLOAD)
        if isinstance(obj, DataLineage):
            DataLineage.objects.filter(pk=obj.pk).update(metadata={"datasets": [PAYLOAD]})
    user = tenants.a.members["editor"]
    user.first_name = PAYLOAD[:150]
    user.save()


def test_admin_walk_renders_no_tenant_markup(client, tenants, root):  # noqa: F811
    import django_etl.urls  # noqa: F401  (registers the admins)

    plant(tenants)
    client.force_login(tenants.a.members["owner"])
    walk = Walk(client, forbidden=["<img src=x", "<svg onload"])
    users = [root, *{u.pk: u for u in [*tenants.a.members.values(), *tenants.b.members.values()]}.values()]
    walk_site(walk, objects_by_model(tenants), users)
    assert not walk.errors, walk.errors
    assert not walk.leaks, "\n".join(walk.leaks[:30])
    assert walk.statuses()[200] >= 100
    # The markup was there to render: shown as text.
    from django.urls import reverse

    page = client.get(reverse("admin:pipelines_pipeline_changelist")).content.decode()
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
