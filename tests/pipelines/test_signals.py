"""Saving a pipeline or its steps regenerates its DAG file after commit; never breaks the save."""

from __future__ import annotations

import logging

import pytest
from django.db import transaction

from django_etl.pipelines import versioning
from tests.support.compiler_helpers import SHAPES, make_pipeline

pytestmark = pytest.mark.integration


@pytest.fixture
def dags(transactional_db, settings, tmp_path):
    """Real commits (on_commit callbacks run as in production); the dags folder in a temporary place."""
    settings.ETL_DAGS_FOLDER = tmp_path / "dags"
    settings.ETL_REGENERATE_ON_SAVE = True
    return tmp_path / "dags"


@pytest.fixture
def regenerations(monkeypatch):
    """The pipeline ids regenerated, in order (the real regeneration still runs)."""
    from django_etl.pipelines import signals

    done: list = []
    real = signals._regenerate

    def counting(pipeline_id):
        done.append(pipeline_id)
        real(pipeline_id)

    monkeypatch.setattr(signals, "_regenerate", counting)
    return done


def test_regeneration_once_per_transaction_after_commit(
    organization, user, file_connector, dags, regenerations
):
    with transaction.atomic(), versioning.batch():  # what the admin does around a form and its inlines
        pipeline = make_pipeline(organization, user, SHAPES["diamond"][0])
        assert regenerations == [] and not dags.exists()  # nothing before the commit
    assert regenerations == [pipeline.pk]
    pipeline.refresh_from_db()
    text = (dags / f"{pipeline.dag_id}.py").read_text()
    assert f"# Version:       {pipeline.version}" in text
    assert "'task_id': 'join'" in text


def test_regeneration_step_edit_writes_the_new_version(
    organization, user, file_connector, dags, regenerations
):
    with transaction.atomic():
        pipeline = make_pipeline(organization, user, SHAPES["linear"][0])
    with transaction.atomic():
        step = pipeline.steps.get(name="clean")
        step.config = {"sql": "select id from orders"}
        step.save()
    pipeline.refresh_from_db()
    text = (dags / f"{pipeline.dag_id}.py").read_text()
    assert "select id from orders" in text
    assert f"'version:{pipeline.version}'" in text
    assert regenerations == [pipeline.pk, pipeline.pk]


def test_regeneration_draft_or_delete_removes_the_file(
    organization, user, file_connector, dags, regenerations
):
    with transaction.atomic():
        drafted = make_pipeline(organization, user, SHAPES["linear"][0])
        deleted = make_pipeline(organization, user, SHAPES["linear"][0], name="Deleted")
    assert len(list(dags.glob("*.py"))) == 2
    drafted.status = "draft"
    drafted.save()
    deleted.delete()
    assert list(dags.glob("*.py")) == []


def test_regeneration_broken_save_keeps_the_good_file_and_does_not_raise(
    organization, user, file_connector, dags, regenerations, caplog
):
    with transaction.atomic():
        pipeline = make_pipeline(organization, user, SHAPES["linear"][0])
    path = dags / f"{pipeline.dag_id}.py"
    good = path.read_bytes()
    with caplog.at_level(logging.WARNING):
        pipeline.config = {"schedule": "not a schedule"}
        pipeline.save()  # save() does not run clean(): a bad config can reach the database
    assert path.read_bytes() == good
    assert "keeps its previous DAG file" in caplog.text
    assert "config.schedule" in caplog.text


def test_regeneration_rolled_back_edit_schedules_nothing(
    organization, user, file_connector, dags, regenerations
):
    with pytest.raises(RuntimeError), transaction.atomic():
        make_pipeline(organization, user, SHAPES["linear"][0])
        raise RuntimeError("the admin form failed")
    assert regenerations == []
    with transaction.atomic():
        pipeline = make_pipeline(organization, user, SHAPES["linear"][0], name="Next")
    assert regenerations == [pipeline.pk]


def test_regeneration_turned_off_by_setting(
    organization, user, file_connector, dags, settings, regenerations
):
    settings.ETL_REGENERATE_ON_SAVE = False
    make_pipeline(organization, user, SHAPES["linear"][0])
    assert regenerations == []
    assert not dags.exists()
