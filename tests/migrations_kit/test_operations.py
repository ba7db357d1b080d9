"""AddIndexConcurrently: built without blocking writes on the partitioned task_runs, resumable, plain on SQLite."""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from io import StringIO

import pytest
from django.db import NotSupportedError, connections, migrations, models
from django.db.migrations.state import ProjectState

from django_etl.migrations_kit import catalog, events
from django_etl.migrations_kit.operations import AddIndexConcurrently
from django_etl.runs import partitioning
from tests.migrations_kit import scratch as scratch_db
from tests.migrations_kit.seed import seed_rows

pytestmark = pytest.mark.integration

INDEX = "task_runs_status_run_idx"
WAIT = 60  # seconds a test waits for the other session before it fails


def index_report(connection, parent: str = INDEX) -> dict:
    """The parent index's validity and, per partition of task_runs, its attached index and validity."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass(%s)", [parent])
        row = cursor.fetchone()
    partitions = {
        name: catalog.attached_index(connection, parent, name)
        for name, _ in catalog.partitions(connection, "task_runs")
    }
    states = {
        name: child and catalog.index_state(connection, child).valid for name, child in partitions.items()
    }
    return {"parent_valid": row and row[0], "partitions": partitions, "valid": states}


def index_oid(connection, name: str) -> int | None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s)::oid", [name])
        return cursor.fetchone()[0]


class Writer(threading.Thread):
    """Two other sessions writing task runs while the index is built.

    The first opens a transaction with one row and holds it, so the build of the partition waits for it (a
    concurrent build waits for older writers; that proves it is under way). Meanwhile the second writes rows
    in transactions of their own and commits them: a plain CREATE INDEX would block those (they would queue
    behind its SHARE lock) and hit their lock timeout. Then the first commits and the second keeps writing.
    """

    def __init__(self, database: str, run_id, step_id, month: dt.datetime) -> None:
        super().__init__(daemon=True)
        self.database, self.run_id, self.step_id, self.month = database, run_id, step_id, month
        self.migrating_pid: int | None = None
        self.open_transaction = threading.Event()
        self.transaction_open = threading.Event()
        self.stop = threading.Event()
        self.during_build = 0
        self.after_build = 0
        self.errors: list[str] = []
        self.sequence = 0

    def insert(self, connection) -> None:
        self.sequence += 1
        connection.execute(
            "INSERT INTO task_runs (id, pipeline_run_id, pipeline_step_id, status, logs, metrics, retry_count, "
            "run_started_at) VALUES (%s, %s, %s, 'running', '', '{}', 0, %s)",
            [uuid.uuid4(), self.run_id, self.step_id, self.month + dt.timedelta(microseconds=self.sequence)],
        )

    def run(self) -> None:
        try:
            with (
                scratch_db.psycopg_connect(self.database) as holder,
                scratch_db.psycopg_connect(self.database, autocommit=True) as writer,
            ):
                writer.execute("SET lock_timeout = '10s'")
                if not self.open_transaction.wait(WAIT):
                    raise TimeoutError("the build never reached the partition")
                self.insert(holder)
                self.during_build += 1
                self.transaction_open.set()
                self.wait_until_build_waits_for(writer, holder.info.backend_pid)
                for _ in range(5):
                    self.insert(writer)
                    self.during_build += 1
                if not self.build_waits_for(writer, holder.info.backend_pid):
                    raise AssertionError("the build finished before the holder committed")
                holder.commit()
                while not self.stop.is_set():
                    self.insert(writer)
                    self.after_build += 1
        except Exception as exc:
            self.errors.append(f"{type(exc).__name__}: {exc}")
            self.transaction_open.set()

    def build_waits_for(self, observer, pid: int) -> bool:
        return pid in observer.execute("SELECT pg_blocking_pids(%s)", [self.migrating_pid]).fetchone()[0]

    def wait_until_build_waits_for(self, observer, pid: int) -> None:
        for _ in range(WAIT * 20):
            if self.build_waits_for(observer, pid):
                return
            self.stop.wait(0.05)
        raise TimeoutError("the index build never waited for the open write transaction")


def test_concurrent_index_builds_on_partitioned_task_runs_while_writes_continue(scratch, settings):
    alias = scratch.alias
    seeded = seed_rows(alias)
    scratch_db.migrate(alias, "runs", "0001")
    assert index_report(scratch)["parent_valid"] is None

    now = dt.datetime.now(dt.UTC)
    partition = partitioning.partition_name(partitioning.month_start(now))
    task_run = seeded["task_runs"][0]
    writer = Writer(alias, task_run.pipeline_run_id, task_run.pipeline_step_id, now)
    steps = []

    def on_build(*, table, step, **_):
        steps.append((step, table))
        if step == "build" and table == partition:
            writer.migrating_pid = catalog.backend_pid(connections[alias])
            writer.open_transaction.set()
            assert writer.transaction_open.wait(WAIT)

    events.index_build.connect(on_build, dispatch_uid="test-concurrent-build")
    writer.start()
    out = StringIO()
    try:
        scratch_db.migrate(alias, "runs", "0002", monitor=True, verbosity=1, stdout=out)
    finally:
        events.index_build.disconnect(dispatch_uid="test-concurrent-build")
        writer.stop.set()
        writer.join(WAIT)

    assert writer.errors == []
    assert writer.during_build == 6
    report = index_report(scratch)
    assert report["parent_valid"] is True
    assert all(report["partitions"].values()), report
    assert all(report["valid"].values()), report
    assert ("parent", "task_runs") in steps and ("build", partition) in steps
    assert f"building on {partition}" in out.getvalue()

    # The index holds every row, those written during the build included.
    with scratch.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM task_runs WHERE status = 'running'")
        scanned = cursor.fetchone()[0]
        cursor.execute("SET enable_seqscan = off")
        cursor.execute("EXPLAIN SELECT count(*) FROM task_runs WHERE status = 'running'")
        plan = " ".join(row[0] for row in cursor.fetchall())
        cursor.execute("SELECT count(*) FROM task_runs WHERE status = 'running'")
        through_index = cursor.fetchone()[0]
        cursor.execute("RESET enable_seqscan")
    assert "status_run_idx" in plan
    assert through_index == scanned >= 1 + writer.during_build


def test_interrupted_build_resumes_dropping_the_invalid_leftover(scratch):
    alias = scratch.alias
    scratch_db.migrate(alias, "runs", "0001")
    names = [name for name, _ in catalog.partitions(scratch, "task_runs")]
    done, broken = names[0], names[1]
    # What an interrupted run leaves: the parent ON ONLY, one partition built and attached, one build INVALID.
    with scratch.cursor() as cursor:
        cursor.execute(f'CREATE INDEX "{INDEX}" ON ONLY task_runs (status, run_started_at)')
        cursor.execute(f'CREATE INDEX "{done}_status_run_idx" ON "{done}" (status, run_started_at)')
        cursor.execute(f'ALTER INDEX "{INDEX}" ATTACH PARTITION "{done}_status_run_idx"')
        cursor.execute(f'CREATE INDEX "{broken}_status_run_idx" ON "{broken}" (status, run_started_at)')
        cursor.execute(
            "UPDATE pg_index SET indisvalid = false WHERE indexrelid = to_regclass(%s)",
            [f"{broken}_status_run_idx"],
        )
    kept, leftover = (
        index_oid(scratch, f"{done}_status_run_idx"),
        index_oid(scratch, f"{broken}_status_run_idx"),
    )

    scratch_db.migrate(alias, "runs", "0002")

    report = index_report(scratch)
    assert report["parent_valid"] is True and all(report["valid"].values()), report
    assert (
        index_oid(scratch, f"{done}_status_run_idx") == kept
    )  # resumed: the finished partition is not rebuilt
    assert index_oid(scratch, f"{broken}_status_run_idx") not in (
        None,
        leftover,
    )  # the INVALID one is rebuilt


def plain_operation():
    return AddIndexConcurrently(
        model_name="pipelinerun",
        index=models.Index(fields=["trigger_type", "started_at"], name="pipeline_runs_trigger_idx"),
    )


def run_operation(connection, operation, *, backwards: bool = False, atomic: bool = False) -> None:
    from django.db.migrations.executor import MigrationExecutor

    state = MigrationExecutor(connection)._create_project_state(with_applied_migrations=True)
    after = state.clone()
    operation.state_forwards("runs", after)
    with connection.schema_editor(atomic=atomic) as editor:
        if backwards:
            operation.database_backwards("runs", editor, after, state)
        else:
            operation.database_forwards("runs", editor, state, after)


def test_concurrent_index_on_plain_table_replaces_an_invalid_leftover_and_reverses(scratch):
    operation = plain_operation()
    with scratch.cursor() as cursor:
        cursor.execute('CREATE INDEX "pipeline_runs_trigger_idx" ON pipeline_runs (trigger_type, started_at)')
        cursor.execute(
            "UPDATE pg_index SET indisvalid = false WHERE indexrelid = 'pipeline_runs_trigger_idx'::regclass"
        )
    leftover = index_oid(scratch, "pipeline_runs_trigger_idx")

    run_operation(scratch, operation)
    state = catalog.index_state(scratch, "pipeline_runs_trigger_idx")
    assert state == catalog.IndexState(table="pipeline_runs", valid=True)
    assert index_oid(scratch, "pipeline_runs_trigger_idx") != leftover

    run_operation(scratch, operation)  # again (a retry): the complete index is kept
    assert catalog.index_state(scratch, "pipeline_runs_trigger_idx").valid

    run_operation(scratch, operation, backwards=True)
    assert catalog.index_state(scratch, "pipeline_runs_trigger_idx") is None


def test_concurrent_index_refuses_to_run_inside_a_transaction(scratch):
    with pytest.raises(NotSupportedError, match="atomic = False"):
        run_operation(scratch, plain_operation(), atomic=True)


def test_concurrent_index_is_a_plain_add_index_in_the_migration_state():
    operation = plain_operation()
    state = ProjectState()
    state.add_model(
        migrations.state.ModelState(
            "runs", "PipelineRun", [("id", models.AutoField(primary_key=True))], {"indexes": []}
        )
    )
    operation.state_forwards("runs", state)
    assert [index.name for index in state.models["runs", "pipelinerun"].options["indexes"]] == [
        "pipeline_runs_trigger_idx"
    ]
    assert operation.retry_safe and "concurrently" in operation.describe()
