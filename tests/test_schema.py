"""The database itself enforces the seed's unique constraints and carries every index of the seed."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.db import IntegrityError, connection, transaction

pytestmark = pytest.mark.integration

# Written from the seed (seed-data-model.md), not read back from the models: table -> index column lists.
SEED_INDEXES = {
    "auth_user": [["email"], ["username"]],
    "connectors": [["organization_id", "connector_type"], ["is_active"]],
    "pipelines": [["organization_id", "status"], ["created_by_id"]],
    "pipeline_steps": [["pipeline_id", "order_index"]],
    "pipeline_runs": [
        ["pipeline_id", "started_at DESC"],
        ["status"],
        ["triggered_by_id"],
        ["pipeline_id", "started_at DESC", "status"],
        ["started_at", "status"],
    ],
    "task_runs": [["pipeline_run_id", "status"], ["pipeline_step_id"], ["started_at DESC"]],
    "alerts": [["level", "created_at DESC"], ["is_resolved"], ["alert_type"]],
}
SEED_UNIQUE = {
    "organizations": [["slug"]],
    "connectors": [["organization_id", "name"]],
    "pipeline_steps": [["pipeline_id", "order_index"]],
    "data_lineage": [["source_task_id", "target_task_id"]],
}


def index_definitions(table: str) -> list[tuple[str, list[str], str | None, bool]]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s", [table])
        rows = cursor.fetchall()
    result = []
    for name, definition in rows:
        columns = re.search(r"USING \w+ \((.*?)\)(?: WHERE|$)", definition).group(1)
        where = definition.split(" WHERE ", 1)[1] if " WHERE " in definition else None
        result.append((name, [c.strip() for c in columns.split(",")], where, "UNIQUE" in definition))
    return result


@pytest.mark.django_db
@pytest.mark.parametrize("table", sorted(SEED_INDEXES))
def test_seed_indexes_exist_in_pg_indexes(table):
    present = [columns for _, columns, _, _ in index_definitions(table)]
    for expected in SEED_INDEXES[table]:
        assert expected in present, f"{table}: no index on {expected}; found {present}"


@pytest.mark.django_db
def test_named_indexes_exist_with_partial_predicate():
    indexes = {name: (columns, where) for name, columns, where, _ in index_definitions("pipeline_runs")}
    assert indexes["pipeline_runs_dashboard_idx"][0] == ["pipeline_id", "started_at DESC", "status"]
    columns, where = indexes["active_runs_idx"]
    assert columns == ["started_at", "status"]
    assert "running" in where and "pending" in where and "status" in where


@pytest.mark.django_db
@pytest.mark.parametrize("table", sorted(SEED_UNIQUE))
def test_seed_unique_constraints_exist(table):
    unique = [columns for _, columns, _, is_unique in index_definitions(table) if is_unique]
    for expected in SEED_UNIQUE[table]:
        assert expected in unique


def _expect_integrity_error(create):
    with pytest.raises(IntegrityError), transaction.atomic():
        create()


@pytest.mark.django_db
def test_unique_slug_enforced(organization):
    from django_etl.core.models import Organization

    _expect_integrity_error(lambda: Organization.objects.create(name="Other", slug=organization.slug))


@pytest.mark.django_db
def test_unique_connector_name_per_org_enforced(file_connector, other_organization, user):
    from django_etl.connectors.models import Connector

    def again(org):
        return Connector.objects.create(
            name=file_connector.name,
            connector_type="file",
            organization=org,
            created_by=user,
            config=file_connector.config,
        )

    _expect_integrity_error(lambda: again(file_connector.organization))
    assert again(other_organization).pk  # the same name in another organization is fine


@pytest.mark.django_db
def test_unique_membership_enforced(organization, user):
    from django_etl.core.models import OrganizationMembership

    _expect_integrity_error(
        lambda: OrganizationMembership.objects.create(user=user, organization=organization)
    )


@pytest.mark.django_db
def test_step_order_unique_checked_at_commit_so_steps_can_swap(pipeline, make_step):
    from django_etl.pipelines.models import PipelineStep

    first = make_step("a", "notify", {"email": ["a@x.io"]}, 1)
    second = make_step("b", "notify", {"email": ["a@x.io"]}, 2)
    with transaction.atomic():  # deferred: a swap passes through a duplicate state
        PipelineStep.objects.filter(pk=first.pk).update(order_index=2)
        PipelineStep.objects.filter(pk=second.pk).update(order_index=1)

    def duplicate():
        PipelineStep.objects.filter(pk=first.pk).update(order_index=1)
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")

    _expect_integrity_error(duplicate)


@pytest.fixture
def run_with_steps(pipeline, make_step):
    from django_etl.runs.models import PipelineRun

    step_a = make_step("extract", "notify", {"email": ["a@x.io"]}, 1)
    step_b = make_step("load", "notify", {"email": ["a@x.io"]}, 2)
    run = PipelineRun.objects.create(
        pipeline=pipeline, trigger_type="manual", airflow_dag_id=pipeline.dag_id, airflow_run_id="manual__1"
    )
    return run, step_a, step_b


@pytest.mark.django_db
def test_airflow_run_identity_unique(run_with_steps):
    from django_etl.runs.models import PipelineRun

    run, _, _ = run_with_steps
    _expect_integrity_error(
        lambda: PipelineRun.objects.create(
            pipeline=run.pipeline,
            trigger_type="api",
            airflow_dag_id=run.airflow_dag_id,
            airflow_run_id=run.airflow_run_id,
        )
    )
    # Runs recorded without an Airflow identity do not collide with each other.
    PipelineRun.objects.create(pipeline=run.pipeline, trigger_type="manual")
    PipelineRun.objects.create(pipeline=run.pipeline, trigger_type="manual")


@pytest.mark.django_db
def test_one_task_run_per_step_per_run(run_with_steps):
    from django_etl.runs.models import TaskRun

    run, step, _ = run_with_steps
    TaskRun.objects.create(pipeline_run=run, pipeline_step=step)
    _expect_integrity_error(lambda: TaskRun.objects.create(pipeline_run=run, pipeline_step=step))


@pytest.mark.django_db
def test_unique_lineage_relationship_enforced(run_with_steps):
    from django_etl.lineage.models import DataLineage
    from django_etl.runs.models import TaskRun

    run, step_a, step_b = run_with_steps
    source = TaskRun.objects.create(pipeline_run=run, pipeline_step=step_a)
    target = TaskRun.objects.create(pipeline_run=run, pipeline_step=step_b)
    DataLineage.objects.create(source_task=source, target_task=target, relationship_type="direct")
    _expect_integrity_error(
        lambda: DataLineage.objects.create(
            source_task=source, target_task=target, relationship_type="derived"
        )
    )


@pytest.mark.django_db
def test_run_duration_is_completed_minus_started(run_with_steps):
    run, _, _ = run_with_steps
    assert run.duration is None
    run.completed_at = run.started_at + dt.timedelta(minutes=3)
    assert run.duration == dt.timedelta(minutes=3)
