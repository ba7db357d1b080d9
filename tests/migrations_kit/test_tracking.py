"""migrate --monitor: each migration's position, the session it waits for, and its duration."""

from __future__ import annotations

from io import StringIO

import pytest

from django_etl.migrations_kit import events
from tests.migrations_kit import scratch as scratch_db

pytestmark = pytest.mark.integration


def test_monitor_names_the_session_holding_the_lock_and_the_time_waited(scratch, settings):
    scratch_db.migrate(scratch.alias, "runs", "0001")
    settings.ETL_MIGRATION_LOCK_TIMEOUT = 60  # long enough for the watcher to see the wait
    holder = scratch_db.psycopg_connect(scratch.alias)
    holder.execute("LOCK TABLE task_runs IN ROW EXCLUSIVE MODE")  # an open write-back transaction
    pid = holder.info.backend_pid
    seen = []

    def on_wait(*, pid, migration, **_):
        seen.append((pid, migration))
        holder.rollback()  # the transaction ends once the watcher has reported it

    events.lock_wait.connect(on_wait, dispatch_uid="test-lock-wait")
    out = StringIO()
    try:
        scratch_db.migrate(scratch.alias, "runs", monitor=True, verbosity=1, stdout=out)
    finally:
        events.lock_wait.disconnect(dispatch_uid="test-lock-wait")
        holder.close()

    text = out.getvalue()
    assert seen == [(pid, "runs.0002_task_runs_status_run_idx")]
    pending = scratch_db.runs_after_initial()
    assert f"[1/{len(pending)}] Applying runs.0002_task_runs_status_run_idx" in text
    assert f"waiting for a lock held by pid {pid} (idle in transaction" in text
    assert "LOCK TABLE task_runs" in text
    assert "of it waiting for locks" in text
    assert f"Migrated: {len(pending)} migration(s) in" in text


def test_plain_migrate_output_stays_django_s(scratch):
    scratch_db.migrate(scratch.alias, "runs", "0001")
    out = StringIO()
    scratch_db.migrate(scratch.alias, "runs", verbosity=1, stdout=out)
    assert "  Applying runs.0002_task_runs_status_run_idx... OK" in out.getvalue()
    assert "[1/1]" not in out.getvalue()
