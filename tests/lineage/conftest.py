"""Fixtures for lineage tests: real pipelines in Django, compiled and run through Airflow's dag.test()."""

from __future__ import annotations

import sqlite3

import pytest

RECORDER_DATABASES = ["default", "etl_recorder"]

ORDERS = (
    "order_id,customer_id,amount,status\n"
    "1,10,12.5,paid\n2,10,3.0,paid\n3,11,25.0,refunded\n4,12,40.0,paid\n5,11,8.0,pending\n"
)


@pytest.fixture(scope="module", autouse=True)
def recorder_alias(django_db_setup, django_db_blocker):
    from airflow_plugin.writeback import close_connection, setup

    setup()  # the recorder's alias, registered once the default alias points at the test database
    yield
    close_connection()


@pytest.fixture
def sources(transactional_db, organization, user, settings, tmp_path):
    """A file connector over a landing folder with orders.csv, and a SQLite warehouse connector."""
    from django_etl.connectors.models import Connector

    landing = tmp_path / "landing"
    landing.mkdir()
    (landing / "orders.csv").write_text(ORDERS)
    warehouse = tmp_path / "warehouse.sqlite3"
    sqlite3.connect(warehouse).close()
    settings.ETL_FILE_ROOTS = [str(tmp_path)]
    Connector.objects.create(
        name="landing",
        connector_type="file",
        organization=organization,
        created_by=user,
        config={"root": str(landing), "format": "csv"},
    )
    Connector.objects.create(
        name="warehouse",
        connector_type="database",
        organization=organization,
        created_by=user,
        config={"engine": "sqlite", "path": str(warehouse)},
    )
    return {"landing": landing, "warehouse": warehouse}


@pytest.fixture
def make_pipeline(organization, user):
    """A validated Pipeline with its steps: (name, type, config, dependencies by step name)."""
    from django_etl.pipelines.models import Pipeline, PipelineStep
    from django_etl.pipelines.validation import validate_pipeline

    def make(name: str, steps: list[tuple[str, str, dict, list[str]]]):
        pipeline = Pipeline.objects.create(
            name=name, organization=organization, created_by=user, status="active", config={"schedule": None}
        )
        rows = {}
        for position, (step_name, step_type, config, depends_on) in enumerate(steps, start=1):
            rows[step_name] = PipelineStep.objects.create(
                pipeline=pipeline,
                name=step_name,
                step_type=step_type,
                config=config,
                order_index=position * 10,
                dependencies=[str(rows[d].pk) for d in depends_on],
            )
        report = validate_pipeline(pipeline)
        assert not report, str(report)
        return pipeline

    return make


@pytest.fixture
def run_pipeline(airflow_db):
    """Compile a pipeline into the session's dags folder and run it once; returns its PipelineRun."""
    from django_etl.runs.demo_run import run_pipeline

    def run(pipeline):
        return run_pipeline(pipeline.name, out=lambda line: None)

    return run


@pytest.fixture(scope="session")
def airflow_db():
    from airflow.utils.db import initdb

    initdb()


def edges_of(run) -> set[tuple[str, str, str]]:
    """(source step, target step, relationship) of every lineage edge of ``run``."""
    from django_etl.lineage.models import DataLineage

    return {
        (e.source_task.pipeline_step.name, e.target_task.pipeline_step.name, e.relationship_type)
        for e in DataLineage.objects.filter(target_task__pipeline_run=run).select_related(
            "source_task__pipeline_step", "target_task__pipeline_step"
        )
    }


def edge(run, source: str, target: str):
    from django_etl.lineage.models import DataLineage

    return DataLineage.objects.get(
        target_task__pipeline_run=run,
        source_task__pipeline_step__name=source,
        target_task__pipeline_step__name=target,
    )
