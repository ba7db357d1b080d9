"""Every migration runs under the lock and statement timeouts; a lock timeout is retried a bounded number of times."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management.base import CommandError
from django.db import OperationalError, migrations, models
from django.db.migrations.recorder import MigrationRecorder

from django_etl.migrations_kit import catalog, events, timeouts
from django_etl.migrations_kit.operations import AddIndexConcurrently
from tests.migrations_kit import scratch as scratch_db

pytestmark = pytest.mark.integration

CHECK_MODULES = {"lineage": "tests.migrations_kit.lineage_check"}


def applied(connection, app: str, name: str) -> bool:
    return (app, name) in MigrationRecorder(connection).applied_migrations()


@pytest.fixture
def blocker(scratch):
    """Another session, as a write-back transaction that stays open: call ``hold(table)`` to lock a table."""
    session = scratch_db.psycopg_connect(scratch.alias)

    def hold(table: str) -> int:
        session.execute(f'LOCK TABLE "{table}" IN ROW EXCLUSIVE MODE')
        return session.info.backend_pid

    hold.session = session
    yield hold
    session.close()


@pytest.fixture
def retries():
    seen = []

    def on_retry(*, attempt, **_):
        seen.append(attempt)

    events.lock_retry.connect(on_retry, dispatch_uid="test-retries")
    yield seen
    events.lock_retry.disconnect(dispatch_uid="test-retries")


def test_session_timeouts_apply_for_the_block_then_restore(scratch):
    policy = timeouts.TimeoutPolicy(lock_timeout=1.5, statement_timeout=90, retries=0)
    before = catalog.current_settings(scratch, "lock_timeout", "statement_timeout")
    with timeouts.session_timeouts(scratch, policy):
        inside = catalog.current_settings(scratch, "lock_timeout", "statement_timeout")
    assert inside == {"lock_timeout": "1500ms", "statement_timeout": "90s"}
    assert catalog.current_settings(scratch, "lock_timeout", "statement_timeout") == before


def test_atomic_migration_hits_the_lock_timeout_is_rolled_back_and_retried(
    scratch, blocker, retries, settings
):
    settings.MIGRATION_MODULES = CHECK_MODULES
    settings.ETL_MIGRATION_LOCK_TIMEOUT = 0.2
    settings.ETL_MIGRATION_RETRIES = 2
    blocker("data_lineage")

    def release(**_):
        blocker.session.rollback()  # the long transaction ends while the migration waits to retry

    events.lock_retry.connect(release, dispatch_uid="test-release")
    out = StringIO()
    try:
        scratch_db.migrate(scratch.alias, "lineage", verbosity=1, stdout=out)
    finally:
        events.lock_retry.disconnect(dispatch_uid="test-release")

    assert retries == [2]
    assert "lineage.9001_lineage_not_self: lock timeout" in out.getvalue()
    assert "attempt 2 of 3" in out.getvalue()
    assert applied(scratch, "lineage", "9001_lineage_not_self")
    with scratch.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_constraint WHERE conname = 'lineage_not_self'")
        assert cursor.fetchone()[0] == 1


def test_lock_timeout_retries_end_with_an_error_naming_the_fix(scratch, blocker, retries, settings):
    scratch_db.migrate(scratch.alias, "runs", "0001")
    settings.ETL_MIGRATION_LOCK_TIMEOUT = 0.2
    settings.ETL_MIGRATION_RETRIES = 1
    blocker("task_runs")  # held throughout

    with pytest.raises(CommandError) as error:
        scratch_db.migrate(scratch.alias, "runs")

    message = str(error.value)
    assert "runs.0002_task_runs_status_run_idx" in message
    assert "ETL_MIGRATION_LOCK_TIMEOUT=0.2 s in 2 attempt(s)" in message
    assert "pg_stat_activity" in message
    assert retries == [2]
    assert not applied(scratch, "runs", "0002_task_runs_status_run_idx")
    assert catalog.index_state(scratch, "task_runs_status_run_idx") is None
    # The session's own timeouts are back once migrate is done.
    assert catalog.current_settings(scratch, "lock_timeout")["lock_timeout"] == "0"


def test_statement_timeout_cancels_a_long_statement_without_retry(scratch, retries, settings):
    settings.MIGRATION_MODULES = {"lineage": "tests.migrations_kit.lineage_slow"}
    settings.ETL_MIGRATION_STATEMENT_TIMEOUT = 0.2

    with pytest.raises(CommandError) as error:
        scratch_db.migrate(scratch.alias, "lineage")

    assert "lineage.9001_slow_statement" in str(error.value)
    assert "ETL_MIGRATION_STATEMENT_TIMEOUT=0.2 s" in str(error.value)
    assert "rolled back" in str(error.value)
    assert retries == []
    assert not applied(scratch, "lineage", "9001_slow_statement")


def test_non_atomic_migration_of_unsafe_operations_is_not_retried(scratch, blocker, retries):
    blocker("data_lineage")
    migration = migrations.Migration("9002_raw", "lineage")
    migration.atomic = False
    migration.operations = [migrations.RunSQL("ALTER TABLE data_lineage ADD COLUMN note text")]
    policy = timeouts.TimeoutPolicy(lock_timeout=0.2, statement_timeout=0, retries=3)

    def run():
        with scratch.cursor() as cursor:
            cursor.execute("ALTER TABLE data_lineage ADD COLUMN note text")

    with pytest.raises(timeouts.MigrationLockTimeout, match="not retried"):
        timeouts.guarded(run, connection=scratch, in_flight=lambda: migration, report=print, policy=policy)
    assert retries == []


def test_guarded_passes_other_database_errors_through(scratch):
    def run():
        with scratch.cursor() as cursor:
            cursor.execute("SELECT * FROM no_such_table")

    with pytest.raises(Exception, match="no_such_table") as error:
        timeouts.guarded(run, connection=scratch, in_flight=lambda: None, report=print)
    assert not isinstance(error.value, timeouts.MigrationLockTimeout)


def test_retry_safe_only_what_can_run_again():
    atomic = migrations.Migration("0001_x", "runs")
    raw = migrations.Migration("0002_x", "runs")
    raw.atomic = False
    raw.operations = [migrations.RunSQL("SELECT 1")]
    index = migrations.Migration("0003_x", "runs")
    index.atomic = False
    index.operations = [AddIndexConcurrently("taskrun", models.Index(fields=["status"], name="x_idx"))]
    assert timeouts.retry_safe(atomic) and timeouts.retry_safe(index) and timeouts.retry_safe(None)
    assert not timeouts.retry_safe(raw)


def test_lock_timeout_is_recognised_from_the_driver_error(scratch, blocker):
    blocker("data_lineage")
    with pytest.raises(OperationalError) as error, scratch.cursor() as cursor:
        cursor.execute("SET lock_timeout = '100ms'")
        try:
            cursor.execute("ALTER TABLE data_lineage ADD COLUMN note text")
        finally:
            cursor.execute("RESET lock_timeout")
    assert timeouts.is_lock_timeout(error.value)
    assert not timeouts.is_statement_timeout(error.value)
