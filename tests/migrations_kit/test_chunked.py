"""Chunked data migrations: one transaction per chunk, progress, and a resume after an interruption."""

from __future__ import annotations

import importlib
from io import StringIO

import pytest
from django.db import transaction
from django.db.migrations.recorder import MigrationRecorder

from django_etl.errors import ConfigurationError
from django_etl.migrations_kit import chunked
from tests.migrations_kit import scratch as scratch_db
from tests.migrations_kit.seed import seed_rows

pytestmark = pytest.mark.integration

MIGRATION = ("lineage", "9001_backfill_in_chunks")


def add_edges(alias: str, task_runs, count: int) -> None:
    from django_etl.lineage.models import DataLineage

    pairs = [(a, b) for a in task_runs for b in task_runs if a.pk != b.pk][1 : count + 1]
    DataLineage.objects.using(alias).bulk_create(
        [DataLineage(source_task=a, target_task=b, relationship_type="direct") for a, b in pairs]
    )


def backfilled(alias: str) -> list:
    from django_etl.lineage.models import DataLineage

    return sorted(edge.metadata.get("backfilled", 0) for edge in DataLineage.objects.using(alias).all())


def cursor_table_exists(connection) -> bool:
    return "etl_migration_cursors" in connection.introspection.table_names()


def cursor_row(connection):
    """The walk's cursor, or None: no row, or no table (dropped once no walk is under way)."""
    if not cursor_table_exists(connection):
        return None
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT position, rows_done FROM etl_migration_cursors WHERE name = %s",
            ["lineage.9001_backfill_in_chunks"],
        )
        return cursor.fetchone()


@pytest.fixture
def chunked_migration(settings):
    from tests.migrations_kit.lineage_chunked import __name__ as package

    settings.MIGRATION_MODULES = {"lineage": package}
    module = importlib.import_module(f"{package}.9001_backfill_in_chunks")
    yield module
    module.INTERRUPT_AFTER = None


def test_interrupted_chunked_migration_resumes_after_its_last_chunk(scratch, chunked_migration):
    alias = scratch.alias
    seeded = seed_rows(alias)
    add_edges(alias, seeded["task_runs"], 6)  # 7 edges with the seed's one: chunks of 2, 2, 2, 1
    chunked_migration.INTERRUPT_AFTER = 2

    with pytest.raises(chunked_migration.Interrupted):
        scratch_db.migrate(alias, "lineage")

    assert backfilled(alias) == [0, 0, 0, 1, 1, 1, 1]  # the two committed chunks stay done
    position, done = cursor_row(scratch)
    assert done == 4 and position
    assert MIGRATION not in MigrationRecorder(scratch).applied_migrations()

    chunked_migration.INTERRUPT_AFTER = None
    out = StringIO()
    scratch_db.migrate(alias, "lineage", monitor=True, verbosity=1, stdout=out)

    assert backfilled(alias) == [1] * 7  # every edge exactly once
    assert cursor_row(scratch) is None
    assert MIGRATION in MigrationRecorder(scratch).applied_migrations()
    assert "lineage.9001_backfill_in_chunks: 6/7 rows (85%) (resumed)" in out.getvalue()
    assert "7/7 rows (100%) (resumed)" in out.getvalue()


def test_chunks_report_progress_and_leave_no_cursor(scratch):
    from django_etl.core.models import Organization

    Organization.objects.using(scratch.alias).bulk_create(
        [Organization(name=f"org {n}", slug=f"org-{n}") for n in range(5)]
    )
    reports = []

    def process(rows):
        Organization.objects.using(scratch.alias).filter(pk__in=[row.pk for row in rows]).update(name="done")

    report = chunked.migrate_in_chunks(
        Organization.objects.using(scratch.alias),
        process,
        name="test.orgs",
        chunk_size=2,
        progress=lambda progress: reports.append((progress.done, progress.total)),
    )
    assert reports == [(2, 5), (4, 5), (5, 5)]
    assert (report.chunks, report.resumed) == (3, False)
    assert set(Organization.objects.using(scratch.alias).values_list("name", flat=True)) == {"done"}
    assert not cursor_table_exists(scratch)  # no cursor row, and no table: a finished walk leaves no trace


def test_chunks_refuse_to_run_inside_a_transaction(scratch):
    from django_etl.core.models import Organization

    with pytest.raises(ConfigurationError, match="atomic = False"), transaction.atomic(using=scratch.alias):
        chunked.migrate_in_chunks(Organization.objects.using(scratch.alias), print, name="test.atomic")


def test_chunked_migration_retried_after_a_lock_timeout_resumes(scratch, chunked_migration, settings):
    from django_etl.lineage.models import DataLineage
    from django_etl.migrations_kit import events

    alias = scratch.alias
    seeded = seed_rows(alias)
    add_edges(alias, seeded["task_runs"], 6)
    fifth = sorted(DataLineage.objects.using(alias).values_list("pk", flat=True))[4]  # in the third chunk
    holder = scratch_db.psycopg_connect(alias)
    holder.execute("SELECT 1 FROM data_lineage WHERE id = %s FOR UPDATE", [fifth])  # a writer holds the row
    settings.ETL_MIGRATION_LOCK_TIMEOUT = 0.3
    settings.ETL_MIGRATION_RETRIES = 2
    retried = []

    def release(*, attempt, **_):
        retried.append(attempt)
        holder.rollback()

    events.lock_retry.connect(release, dispatch_uid="test-chunk-retry")
    out = StringIO()
    try:
        scratch_db.migrate(alias, "lineage", monitor=True, verbosity=1, stdout=out)
    finally:
        events.lock_retry.disconnect(dispatch_uid="test-chunk-retry")
        holder.close()

    assert retried == [2]
    assert backfilled(alias) == [1] * 7
    assert "4/7 rows" in out.getvalue() and "7/7 rows (100%) (resumed)" in out.getvalue()
    assert MIGRATION in MigrationRecorder(scratch).applied_migrations()
