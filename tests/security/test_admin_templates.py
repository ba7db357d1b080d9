"""Generated templates saved through the admin: a form error naming the key, or a clean save; never a 500."""

from __future__ import annotations

import json
import os
import uuid

import pytest
from django import forms
from django.urls import reverse
from hypothesis import example, given
from hypothesis import strategies as st

from tests.security.conftest import CANARY_VARIABLE
from tests.security.test_fuzz import TEMPLATES, bounded

pytestmark = pytest.mark.django_db

CANARY_VALUE = f"canary-env-{uuid.uuid4().hex}"


def posted(form) -> dict:
    """What a browser posts for the main form of an admin change page, as rendered."""
    data = {"_save": "Save"}
    for bound in form:
        value = bound.value()
        if isinstance(bound.field, forms.BooleanField):
            if value:
                data[bound.html_name] = "on"
            continue
        if isinstance(bound.field, forms.JSONField):
            value = bound.field.prepare_value(value)
        if value is not None:
            data[bound.html_name] = [str(v) for v in value] if isinstance(value, list | tuple) else str(value)
    return data


@pytest.fixture
def step_page(client, user, pipeline, make_step, file_connector):
    step = make_step("daily file", "extract", {"connector": "landing", "path": "orders.csv"}, 1)
    client.force_login(user)  # the owner of the pipeline's organization
    url = reverse("admin:pipelines_pipelinestep_change", args=[step.pk])
    page = client.get(url)
    assert page.status_code == 200
    return step, url, posted(page.context["adminform"].form)


@bounded(30)
@given(template=TEMPLATES, key=st.sampled_from(["path", "query"]))
@example(template="{{ macros.uuid.os.environ.get('" + CANARY_VARIABLE + "') }}", key="path")
@example(template="SELECT {{ params.x }}", key="query")
@example(template="orders_{{ ds_nodash }}.csv", key="path")
def test_admin_step_template_is_a_form_error_or_a_clean_save(client, step_page, monkeypatch, template, key):
    from django_etl.stepkinds.templating import check_templates

    monkeypatch.setenv(CANARY_VARIABLE, CANARY_VALUE)
    step, url, data = step_page
    config = {"connector": "landing", key: template}
    response = client.post(url, {**data, "config": json.dumps(config)})
    assert response.status_code in (200, 302)
    assert CANARY_VALUE not in response.content.decode()
    step.refresh_from_db()
    problems = check_templates(config, "extract")
    if response.status_code == 302:
        assert not problems and step.config == config
    elif problems:
        errors = " ".join(response.context["adminform"].form.errors.get("config", []))
        assert f"config.{key}: " in errors
        assert step.config != config
    assert CANARY_VALUE not in json.dumps(step.config) and os.environ[CANARY_VARIABLE] == CANARY_VALUE
