"""The pipeline page's steps read as steps: SQL as code, dependencies by name, schemas for the JSON editor."""

from __future__ import annotations

import json
import re

import pytest

from tests.console.busy import make_busy_organization

pytestmark = pytest.mark.django_db


@pytest.fixture
def diamond(root, settings, tmp_path):
    from bench import console_data
    from django_etl.core.models import Organization

    settings.ETL_DAGS_FOLDER = tmp_path / "dags"
    organization = Organization.objects.create(name="Northwind", slug="northwind")
    pipeline, _ = console_data.build(root, organization, history_days=2)
    return pipeline


def test_pipeline_page_shows_sql_as_code_and_dependencies_by_name(client, root, diamond):
    from django.urls import reverse

    from django_etl.stepkinds import STEP_KINDS

    client.force_login(root)
    page = client.get(reverse("admin:pipelines_pipeline_change", args=[diamond.pk])).content.decode()
    glance = page[page.index('id="etl-steps-glance"') :]
    assert '<pre class="etl-sql">SELECT o.customer_id, c.segment' in glance
    load_row = glance[glance.index("load_warehouse") :]
    assert "clean_orders, enrich_customers" in load_row[:400]  # names, not ids
    schemas = json.loads(
        re.search(r'id="etl-step-schemas" type="application/json">(.*?)</script>', page, re.S)[1]
    )
    assert schemas == {name: kind.schema.model_json_schema() for name, kind in STEP_KINDS.items()}
    # Each step's dependencies offer the pipeline's steps by name; the posted value stays the JSON list.
    steps = {step.name: str(step.pk) for step in diamond.steps.all()}
    assert f'<option value="{steps["clean_orders"]}">clean_orders</option>' in page
    assert "etl/vendor/ajv/ajv2020.min.js" in page and "etl/step_editor.js" in page
    # The config is indented JSON, one key a line (HTML-escaped in the textarea).
    assert "\n  &quot;connector&quot;: &quot;CRM database&quot;" in page


def test_step_editor_fields_clean_posted_json_as_before(rf, root, diamond):
    from django.contrib import admin

    import django_etl.urls  # noqa: F401  (registers the admins)
    from django_etl.pipelines.models import Pipeline
    from django_etl.pipelines.step_editor import StepConfigWidget, StepDependenciesWidget

    inline = admin.site._registry[Pipeline].inlines[0](Pipeline, admin.site)
    request = rf.get("/")
    request.user = root
    form_class = inline.get_formset(request, diamond).form
    extract = diamond.steps.get(name="extract_orders")
    dependencies = form_class.base_fields["dependencies"]
    config = form_class.base_fields["config"]
    assert isinstance(dependencies.widget, StepDependenciesWidget)
    assert isinstance(config.widget, StepConfigWidget)
    assert (str(extract.pk), "extract_orders") in dependencies.widget.steps
    # What a browser posts (with or without JavaScript) is the JSON text the validation layer reads.
    assert dependencies.clean(dependencies.to_python(f'["{extract.pk}"]')) == [str(extract.pk)]
    assert config.clean(config.to_python('{\n  "sql": "SELECT 1"\n}')) == {"sql": "SELECT 1"}


def test_busy_organization_has_one_task_run_per_step_and_run(root):
    from django_etl.runs.models import TaskRun

    organization = make_busy_organization(root, pipelines=2, steps=3, runs=10, slug="tiny")
    assert TaskRun.objects.filter(pipeline_run__pipeline__organization=organization).count() == 30
