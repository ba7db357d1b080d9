"""The validation layer: every problem at once, each naming pipeline, step and key."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from django_etl.pipelines.validation import validate_pipeline

pytestmark = pytest.mark.django_db

NOTIFY = {"email": ["team@example.com"]}


def test_clean_rejects_cycle_and_names_it(pipeline, make_step):
    a = make_step("first", "notify", NOTIFY, 1)
    b = make_step("second", "notify", NOTIFY, 2, dependencies=[str(a.pk)])
    a.dependencies = [str(b.pk)]
    a.save()
    report = validate_pipeline(pipeline)
    assert "dependency cycle: 'first' -> 'second' -> 'first'" in str(report)


def test_clean_rejects_dependency_on_foreign_step(pipeline, make_step, organization, user):
    from django_etl.pipelines.models import Pipeline

    other = Pipeline.objects.create(
        name="Other", organization=organization, created_by=user, status="draft", config={}
    )
    foreign = make_step("elsewhere", "notify", NOTIFY, 1, pipeline=other)
    step = make_step("mine", "notify", NOTIFY, 1, dependencies=[str(foreign.pk)])
    with pytest.raises(ValidationError) as caught:
        step.full_clean()
    message = str(caught.value)
    assert (
        "step 'mine'" in message and "dependencies[0]" in message and "not a step of this pipeline" in message
    )


def test_clean_rejects_self_dependency(pipeline, make_step):
    step = make_step("loop", "notify", NOTIFY, 1)
    step.dependencies = [str(step.pk)]
    with pytest.raises(ValidationError, match="cannot depend on itself"):
        step.full_clean()


def test_every_error_of_a_pipeline_reported_at_once(pipeline, make_step, db_connector):
    pipeline.config = {"schedule": "every tuesday", "retries": -1, "colour": "blue"}
    make_step("load it", "load", {"connector": "warehouse", "mode": "upsert"}, 1)
    make_step("Load-it", "extract", {"connector": "nowhere", "path": "x.csv"}, 2)
    report = validate_pipeline(pipeline)
    text = str(report)
    assert "pipeline 'Orders daily' config.schedule: 'every tuesday' is not a cron expression" in text
    assert "config.retries" in text and "config.colour: unknown key" in text
    assert "step 'load it' config: mode 'upsert' needs 'key'" in text
    assert "step 'Load-it' config.connector: no connector named 'nowhere'" in text
    assert "gives task id 'load_it'" in text


def test_connector_of_wrong_type_is_rejected(pipeline, make_step, file_connector):
    make_step("notify", "notify", {"webhook_connector": file_connector.name}, 1)
    assert "is a file connector; expected api" in str(validate_pipeline(pipeline))


def test_connector_from_another_organization_is_unknown(pipeline, make_step, other_organization, user):
    from django_etl.connectors.models import Connector

    Connector.objects.create(
        name="theirs",
        connector_type="database",
        organization=other_organization,
        created_by=user,
        config={"engine": "sqlite", "path": "/tmp/x.db"},
    )
    make_step("extract", "extract", {"connector": "theirs", "table": "t"}, 1)
    assert "no connector named 'theirs' in this organization" in str(validate_pipeline(pipeline))


def test_dataset_must_come_from_upstream(pipeline, make_step, file_connector):
    make_step("extract", "extract", {"connector": file_connector.name, "path": "a.csv"}, 1)
    make_step("shape", "transform", {"inputs": ["missing"], "sql": "select 1"}, 2)
    assert "config.inputs: dataset 'missing' is not produced by an upstream step" in str(
        validate_pipeline(pipeline)
    )


def test_valid_pipeline_has_no_problems(pipeline, make_step, file_connector, db_connector):
    make_step("extract", "extract", {"connector": file_connector.name, "path": "a.csv"}, 1)
    make_step("clean", "transform", {"operations": [{"op": "filter", "condition": "x > 0"}]}, 2)
    make_step("check", "validate", {"checks": [{"check": "row_count", "min": 1}]}, 3)
    make_step("load", "load", {"connector": db_connector.name, "table": "t", "mode": "append"}, 4)
    make_step("tell", "notify", NOTIFY, 5)
    assert not validate_pipeline(pipeline), str(validate_pipeline(pipeline))
