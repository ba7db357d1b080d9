"""The pipeline admin validates add and change alike, with generate_dags' rules, every problem in one response."""

from __future__ import annotations

import json
import re

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


@pytest.fixture
def editor_client(client, user, organization):
    user.memberships.update(role="editor")
    client.force_login(user)
    return client


def pipeline_form(organization, steps, *, pipeline=None, config=None, name="Orders") -> dict:
    """The admin's POST for a pipeline and its inline steps (``steps``: name, type, config[, existing step])."""
    data = {
        "name": name,
        "description": "",
        "organization": str(organization.pk),
        "status": "active",
        "config": json.dumps(config or {"schedule": "@daily"}),
        "metadata": "{}",
        "steps-TOTAL_FORMS": str(len(steps)),
        "steps-INITIAL_FORMS": str(sum(1 for s in steps if len(s) > 3)),
        "steps-MIN_NUM_FORMS": "0",
        "steps-MAX_NUM_FORMS": "1000",
        "_save": "Save",
    }
    for i, (step_name, step_type, step_config, *existing) in enumerate(steps):
        data |= {
            f"steps-{i}-name": step_name,
            f"steps-{i}-order_index": str(i + 1),
            f"steps-{i}-step_type": step_type,
            f"steps-{i}-config": json.dumps(step_config),
            f"steps-{i}-dependencies": "[]",
        }
        if existing:
            data |= {f"steps-{i}-id": str(existing[0].pk), f"steps-{i}-pipeline": str(pipeline.pk)}
    return data


def step_errors(response) -> dict[str, list[str]]:
    """Step name -> every error shown on that step's form."""
    formset = response.context["inline_admin_formsets"][0].formset
    return {
        form["name"].value(): [str(e) for errors in form.errors.values() for e in errors]
        for form in formset.forms
        if form.errors
    }


def said(errors: list[str]) -> set[str]:
    """The key and message of each error, without the pipeline and step it names."""
    return {re.sub(r"^(pipeline '[^']*' )?step '[^']*' ", "", e) for e in errors}


BROKEN = [
    ("extract orders", "extract", {"connector": "missing", "path": "orders.csv"}),
    ("clean", "transform", {"sql": "select 1", "bogus": True}),
    ("store", "load", {"connector": "landing", "path": "out.csv", "input": "nowhere"}),
]


def test_add_reports_missing_connectors_and_every_problem_at_once(
    editor_client, organization, file_connector
):
    from django_etl.pipelines.models import Pipeline

    response = editor_client.post(
        reverse("admin:pipelines_pipeline_add"), pipeline_form(organization, BROKEN)
    )
    assert response.status_code == 200
    errors = step_errors(response)
    assert any(
        "config.connector: no connector named 'missing' in this organization" in e
        for e in errors["extract orders"]
    )
    assert any("config.bogus: unknown key" in e for e in errors["clean"])
    assert any(
        "config.input: dataset 'nowhere' is not produced by an upstream step" in e for e in errors["store"]
    )
    assert not Pipeline.objects.filter(name="Orders").exists()


def test_add_and_change_report_the_same_problems(
    editor_client, organization, file_connector, pipeline, make_step
):
    added = step_errors(
        editor_client.post(reverse("admin:pipelines_pipeline_add"), pipeline_form(organization, BROKEN))
    )
    existing = make_step("extract orders", "extract", {"connector": "landing", "path": "orders.csv"}, 1)
    steps = [(*BROKEN[0], existing), *BROKEN[1:]]
    url = reverse("admin:pipelines_pipeline_change", args=[pipeline.pk])
    changed = step_errors(editor_client.post(url, pipeline_form(organization, steps, pipeline=pipeline)))
    assert {name: said(e) for name, e in added.items()} == {name: said(e) for name, e in changed.items()}
    existing.refresh_from_db()
    assert existing.config["connector"] == "landing"  # nothing saved


def test_step_naming_another_organizations_connector_is_refused(
    editor_client, organization, other_organization, user
):
    from django_etl.connectors.models import Connector
    from django_etl.pipelines.models import Pipeline

    Connector.objects.create(
        name="their files", connector_type="file", organization=other_organization, created_by=user, config={}
    )
    steps = [("extract", "extract", {"connector": "their files", "path": "x.csv"})]
    response = editor_client.post(reverse("admin:pipelines_pipeline_add"), pipeline_form(organization, steps))
    assert any(
        "no connector named 'their files' in this organization" in e for e in step_errors(response)["extract"]
    )
    assert not Pipeline.objects.exists()


def test_pipeline_and_step_problems_come_back_together(editor_client, organization, file_connector):
    response = editor_client.post(
        reverse("admin:pipelines_pipeline_add"),
        pipeline_form(organization, BROKEN, config={"schedule": "never"}),
    )
    assert "config" in response.context["adminform"].form.errors
    assert set(step_errors(response)) == {"extract orders", "clean", "store"}


def test_valid_pipeline_is_added(editor_client, organization, file_connector):
    from django_etl.pipelines.models import Pipeline

    steps = [
        ("extract orders", "extract", {"connector": "landing", "path": "orders.csv"}),
        ("store", "load", {"connector": "landing", "path": "out.csv"}),
    ]
    response = editor_client.post(reverse("admin:pipelines_pipeline_add"), pipeline_form(organization, steps))
    assert response.status_code == 302, step_errors(response) if response.context else response
    assert Pipeline.objects.get(name="Orders").steps.count() == 2


def test_step_page_checks_the_step_inside_its_pipeline(editor_client, pipeline, file_connector, make_step):
    first = make_step("extract orders", "extract", {"connector": "landing", "path": "orders.csv"}, 1)
    second = make_step("store", "load", {"connector": "landing", "path": "out.csv"}, 2)
    data = {
        "pipeline": str(pipeline.pk),
        "name": "store",
        "order_index": "1",  # the order of the other step
        "step_type": "load",
        "config": json.dumps({"connector": "landing", "path": "out.csv", "input": "nowhere"}),
        "dependencies": "[]",
    }
    response = editor_client.post(reverse("admin:pipelines_pipelinestep_change", args=[second.pk]), data)
    assert response.status_code == 200
    text = " ".join(str(e) for errors in response.context["adminform"].form.errors.values() for e in errors)
    assert "order_index: 1 is used by more than one step" in text
    assert "dataset 'nowhere' is not produced by an upstream step" in text
    second.refresh_from_db()
    first.refresh_from_db()
    assert (second.order_index, first.order_index) == (2, 1)
