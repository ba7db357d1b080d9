"""Pipeline.version: a new patch version for every change of config or steps, one per admin save."""

from __future__ import annotations

import pytest

from django_etl.pipelines import versioning
from django_etl.pipelines.versioning import next_patch

pytestmark = pytest.mark.django_db
NOTIFY = {"email": ["team@example.com"]}


def test_next_patch():
    assert next_patch("1.0.0") == "1.0.1"
    assert next_patch("2.3.9") == "2.3.10"
    assert next_patch("beta") == "beta.1"


def test_config_change_bumps_patch(pipeline):
    pipeline.config = {"schedule": "@hourly"}
    pipeline.save()
    pipeline.refresh_from_db()
    assert pipeline.version == "1.0.1"


def test_status_change_does_not_bump(pipeline):
    pipeline.status = "paused"
    pipeline.save()
    pipeline.refresh_from_db()
    assert pipeline.version == "1.0.0"


def test_step_change_bumps_and_unchanged_save_does_not(pipeline, make_step):
    step = make_step("a", "notify", NOTIFY, 1)
    pipeline.refresh_from_db()
    assert pipeline.version == "1.0.1"
    step.save()
    pipeline.refresh_from_db()
    assert pipeline.version == "1.0.1"
    step.config = {"email": ["other@example.com"]}
    step.save()
    step.delete()
    pipeline.refresh_from_db()
    assert pipeline.version == "1.0.3"


def test_batch_bumps_once(pipeline, make_step):
    with versioning.batch():
        pipeline.config = {"schedule": "@hourly"}
        pipeline.save()
        make_step("a", "notify", NOTIFY, 1)
        make_step("b", "notify", NOTIFY, 2)
    pipeline.refresh_from_db()
    assert pipeline.version == "1.0.1"


def test_pipeline_created_in_batch_keeps_initial_version(organization, user):
    from django_etl.pipelines.models import Pipeline, PipelineStep

    with versioning.batch():
        pipeline = Pipeline.objects.create(
            name="New", organization=organization, created_by=user, status="draft", config={}
        )
        PipelineStep.objects.create(
            pipeline=pipeline, name="a", step_type="notify", config=NOTIFY, order_index=1
        )
    pipeline.refresh_from_db()
    assert pipeline.version == "1.0.0"
