"""Every JSON field of the admin refuses malformed, oversized, deeply nested, NUL, NaN and Infinity input.

Each bad value is posted into each JSON field of each change page (inline step forms included): the answer is
the page again with an error on that field — never a 500 — and nothing stored changes.
"""

from __future__ import annotations

import pytest
from django import forms
from django.core import serializers
from django.urls import reverse

pytestmark = pytest.mark.django_db

BAD_JSON = {
    "malformed": '{"a": ',
    "nested 10,000 deep": "[" * 10_000 + "]" * 10_000,
    "nested objects": '{"a": ' * 50 + "1" + "}" * 50,
    "NUL escape": '{"a": "x\\u0000y"}',
    "NUL key": '{"x\\u0000": 1}',
    "raw NUL": '{"a": "x\x00y"}',
    "NaN": '{"a": NaN}',
    "Infinity": '{"a": [1, -Infinity]}',
    "overflowing float": '{"a": 1e999}',
    "too many digits": '{"a": ' + "9" * 5000 + "}",
    "lone surrogate": '{"a": "\\ud800"}',
    "oversized": '{"a": "' + "x" * 300_000 + '"}',
}
# Fields that hold JSON text without being JSON form fields.
JSON_TEXT_FIELDS = {"secret"}


def as_post(form) -> dict:
    """What a browser posts for ``form`` as rendered (None values are left out, as empty inputs are)."""
    data = {}
    for bound in form:
        value = bound.value()
        if isinstance(bound.field, forms.BooleanField):
            if value:
                data[bound.html_name] = "on"
            continue
        if isinstance(bound.field, forms.JSONField):
            value = bound.field.prepare_value(value)
        if value is None:
            continue
        data[bound.html_name] = [str(v) for v in value] if isinstance(value, list | tuple) else str(value)
    return data


def page_forms(response):
    """(form, its formset or None) for the page's main form and every inline form."""
    yield response.context["adminform"].form, None
    for inline in response.context["inline_admin_formsets"]:
        for form in inline.formset.forms:
            yield form, inline.formset


def page_data(response) -> dict:
    data = {"_save": "Save"}
    for form, formset in page_forms(response):
        data |= as_post(form)
        if formset is not None:
            data |= as_post(formset.management_form)
    return data


def json_fields(response):
    """(html name, form field name, index of the inline form or None) of every JSON input on the page."""
    for form, formset in page_forms(response):
        index = None if formset is None else formset.forms.index(form)
        for bound in form:
            if isinstance(bound.field, forms.JSONField) or bound.name in JSON_TEXT_FIELDS:
                yield bound.html_name, bound.name, (formset.prefix if formset else None, index)


def errors_on(response, name: str, where) -> list:
    prefix, index = where
    if prefix is None:
        return response.context["adminform"].form.errors.get(name, [])
    inline = next(i for i in response.context["inline_admin_formsets"] if i.formset.prefix == prefix)
    return inline.formset.forms[index].errors.get(name, [])


def stored():
    from django_etl.connectors.models import Connector, Credential
    from django_etl.core.models import Organization, User
    from django_etl.pipelines.models import Pipeline, PipelineStep

    return [
        serializers.serialize("json", m.objects.order_by("pk"))
        for m in (Organization, User, Connector, Credential, Pipeline, PipelineStep)
    ]


@pytest.fixture
def pages(user, organization, credential, file_connector, pipeline, make_step):
    make_step("extract orders", "extract", {"connector": "landing", "path": "orders.csv"}, 1)
    make_step("store", "load", {"connector": "landing", "path": "out.csv"}, 2)
    return [
        reverse("admin:connectors_connector_change", args=[file_connector.pk]),
        reverse("admin:connectors_credential_change", args=[credential.pk]),
        reverse("admin:pipelines_pipeline_change", args=[pipeline.pk]),
        reverse("admin:core_organization_change", args=[organization.pk]),
        reverse("admin:core_user_change", args=[user.pk]),
        reverse("admin:pipelines_pipeline_add"),
        reverse("admin:connectors_connector_add"),
    ]


def test_every_json_field_refuses_bad_json_with_a_form_error(client, user, pages):
    client.force_login(user)  # the owner of Acme
    checked = set()
    before = stored()
    for url in pages:
        page = client.get(url)
        assert page.status_code == 200, url
        base = page_data(page)
        for position, (html_name, name, where) in enumerate(json_fields(page)):
            # Every bad value on the page's first JSON field, the usual suspects on the others (time).
            labels = BAD_JSON if position == 0 else ("malformed", "nested 10,000 deep", "NUL escape", "NaN")
            for label in labels:
                text = BAD_JSON[label]
                response = client.post(url, base | {html_name: text})
                assert response.status_code == 200, (url, html_name, label)
                assert errors_on(response, name, where), (url, html_name, label)
                checked.add(html_name)
        assert stored() == before, url  # nothing saved, not even partly
    assert {
        "config",
        "secret",
        "metadata",
        "settings",
        "preferences",
        "steps-0-config",
        "steps-1-dependencies",
    } <= checked


def test_bad_json_error_names_the_rule_not_the_input(client, user, credential):
    client.force_login(user)
    url = reverse("admin:connectors_credential_change", args=[credential.pk])
    for text, rule in (
        ('{"token": NaN, "x": "canary-secret"}', "NaN is not allowed"),
        ("[" * 10_000, "Nested deeper than 32 levels"),
        ('{"token": "canary-secret\\u0000"}', "NUL characters"),
    ):
        response = client.post(
            url, {"name": credential.name, "organization": str(credential.organization_id), "secret": text}
        )
        body = response.content.decode()
        assert response.status_code == 200 and rule in body
        assert "canary-secret" not in body
