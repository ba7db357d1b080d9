"""AddUniqueConstraintConcurrently: a partial unique index built concurrently, resumable, reversible."""

from __future__ import annotations

import uuid

import pytest
from django.db import IntegrityError, NotSupportedError, models
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.state import ModelState, ProjectState

from django_etl.migrations_kit import catalog
from django_etl.migrations_kit.operations import AddUniqueConstraintConcurrently

pytestmark = pytest.mark.integration

NAME = "unique_open_alert_condition"


def operation():
    return AddUniqueConstraintConcurrently(
        model_name="alert",
        constraint=models.UniqueConstraint(
            fields=["condition_key"],
            condition=models.Q(is_resolved=False) & ~models.Q(condition_key=""),
            name=NAME,
        ),
    )


def run(connection, op, *, backwards: bool = False, atomic: bool = False) -> None:
    """The operation's database work on the scratch database (its model state already has the constraint)."""
    state = MigrationExecutor(connection)._create_project_state(with_applied_migrations=True)
    after = state.clone()
    with connection.schema_editor(atomic=atomic) as editor:
        if backwards:
            op.database_backwards("monitoring", editor, after, state)
        else:
            op.database_forwards("monitoring", editor, state, after)


def index_definition(connection) -> str | None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_get_indexdef(to_regclass(%s))", [NAME])
        return cursor.fetchone()[0]


def insert_open_alert(connection, key: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO alerts (id, level, alert_type, message, metadata, is_resolved, created_at, "
            "condition_key, occurrences) VALUES (%s, 'error', 'task_failed', 'm', '{}', false, now(), %s, 1)",
            [uuid.uuid4(), key],
        )


def test_unique_concurrently_replaces_an_invalid_leftover_enforces_and_reverses(scratch):
    with scratch.cursor() as cursor:
        cursor.execute(f'DROP INDEX "{NAME}"')
        cursor.execute(f'CREATE UNIQUE INDEX "{NAME}" ON alerts (condition_key)')  # an interrupted build
        cursor.execute(f"UPDATE pg_index SET indisvalid = false WHERE indexrelid = '{NAME}'::regclass")
    run(scratch, operation())
    assert catalog.index_state(scratch, NAME) == catalog.IndexState(table="alerts", valid=True)
    definition = index_definition(scratch)
    assert (
        definition.startswith("CREATE UNIQUE INDEX") and "WHERE" in definition and "is_resolved" in definition
    )

    run(scratch, operation())  # again (a retry): the complete index is kept
    insert_open_alert(scratch, "k")
    insert_open_alert(scratch, "")  # no condition: never unique
    insert_open_alert(scratch, "")
    with pytest.raises(IntegrityError):
        insert_open_alert(scratch, "k")

    run(scratch, operation(), backwards=True)
    assert catalog.index_state(scratch, NAME) is None


def test_unique_concurrently_refuses_to_run_inside_a_transaction(scratch):
    with pytest.raises(NotSupportedError, match="atomic = False"):
        run(scratch, operation(), atomic=True)


def test_unique_concurrently_state_is_add_constraint():
    op = operation()
    state = ProjectState()
    state.add_model(
        ModelState("monitoring", "Alert", [("id", models.AutoField(primary_key=True))], {"constraints": []})
    )
    op.state_forwards("monitoring", state)
    assert [c.name for c in state.models["monitoring", "alert"].options["constraints"]] == [NAME]
    assert op.retry_safe and "concurrently" in op.describe()
