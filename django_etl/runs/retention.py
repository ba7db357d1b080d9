"""Retention of task_runs months: archive, detach, purge and drop old months one step at a time; restore one.

Each month moves through :class:`~django_etl.runs.models.ArchiveState` (``archiving → archived → detached →
purged → dropped``), its state committed in ``task_runs_archives`` after every step, so a run that stops
anywhere (a crash, a lock timeout, a killed worker) resumes where it stopped, and running it again does no
step twice. What a month takes with it (docs/partitioning.md): its task runs, the pipeline runs started in it,
their alerts and alert deliveries, and the lineage edges of its task runs. The month's record keeps a summary of
its pipeline runs (count per pipeline and status). :func:`restore_month` brings a month back in one transaction.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from contextlib import contextmanager

from django.db import DatabaseError, IntegrityError, transaction
from django.db import connection as default_connection
from django.utils import timezone

from django_etl import conf
from django_etl.migrations_kit import timeouts
from django_etl.runs import archive, partitioning
from django_etl.runs.models import ArchiveState, PartitionArchive

log = logging.getLogger("django_etl.runs")

Progress = Callable[[str], None] | None
FINISHED = (ArchiveState.DROPPED, ArchiveState.RESTORED)


class RetentionError(archive.ArchiveError):
    """A month could not be archived, detached or restored; the message says why and what to do."""


LOCK_KEY = "etl:task_runs:partitions"


@contextmanager
def exclusive(connection):
    """One partition job at a time (the DAG, a cron job, a person): a session advisory lock, refused when held."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(hashtext(%s))", [LOCK_KEY])
        if not cursor.fetchone()[0]:
            raise RetentionError(
                "another manage_partitions (or the etl_partitions DAG) is running on this database; "
                "run again when it has finished"
            )
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(hashtext(%s))", [LOCK_KEY])


def parse_month(text: str) -> dt.date:
    """``2026-01`` -> 2026-01-01, with an error that shows the expected form."""
    try:
        return dt.datetime.strptime(text.strip(), "%Y-%m").date()
    except ValueError:
        raise RetentionError(f"{text!r} is not a month; write it as YYYY-MM, e.g. 2026-01") from None


def cutoff(retention_months: int, today: dt.date | None = None) -> dt.date:
    """Months before this one are past the retention: the current month and ``retention_months`` before stay."""
    this_month = partitioning.month_start(today or dt.datetime.now(dt.UTC).date())
    return partitioning.add_months(this_month, -retention_months)


def archived_months(using: str = "default") -> set[dt.date]:
    """Months whose partition is (being) archived: ensure_partitions must not create them again."""
    return set(
        PartitionArchive.objects.using(using)
        .exclude(state=ArchiveState.RESTORED)
        .values_list("month", flat=True)
    )


def due_months(connection, retention_months: int, today: dt.date | None = None) -> list[dt.date]:
    """Unfinished months first (they resume whatever the retention says), then attached months past it."""
    records = PartitionArchive.objects.using(connection.alias)
    unfinished = set(records.exclude(state__in=FINISHED).values_list("month", flat=True))
    due = set(unfinished)
    if retention_months > 0:
        restored = set(records.filter(state=ArchiveState.RESTORED).values_list("month", flat=True))
        limit = cutoff(retention_months, today)
        for name in partitioning.existing_partitions(connection):
            month = partitioning.partition_month(name)
            if month is not None and month < limit and month not in restored:
                due.add(month)
    return sorted(due)


def apply_retention(
    connection=default_connection,
    *,
    retention_months: int | None = None,
    location: str | None = None,
    today: dt.date | None = None,
    progress: Progress = None,
) -> list[PartitionArchive]:
    """Archive every month past the retention (``ETL_TASK_RUNS_RETENTION_MONTHS``; 0: none) and resume unfinished ones."""
    if not partitioning.is_postgresql(connection):
        return []
    if retention_months is None:
        retention_months = int(conf.value("ETL_TASK_RUNS_RETENTION_MONTHS"))
    return [
        archive_month(month, connection=connection, location=location, progress=progress)
        for month in due_months(connection, retention_months, today)
    ]


def archive_month(
    month: dt.date, *, connection=default_connection, location: str | None = None, progress: Progress = None
) -> PartitionArchive:
    """Take one month out of the database (archive, detach, purge, drop), resuming from its recorded state."""
    month = partitioning.month_start(month)
    name = partitioning.partition_name(month)
    records = PartitionArchive.objects.using(connection.alias)
    record = records.filter(month=month).first()
    if record is None or record.state == ArchiveState.RESTORED:
        if not partitioning.table_exists(connection, name):
            raise RetentionError(
                f"{name} does not exist: there is no month {month:%Y-%m} of task runs to archive"
            )
        record = record or PartitionArchive(month=month, partition=name)
        record.state = ArchiveState.ARCHIVING
        record.location = location or str(conf.value("ETL_PARTITION_ARCHIVE_URL"))
        record.save(using=connection.alias)
    while record.state in STEPS:
        STEPS[record.state](connection, record, progress)
    return record


# ------------------------------------------------------------------ the steps
def write_archive(connection, record: PartitionArchive, progress: Progress = None) -> None:
    manifest = archive.write(connection, record.partition, record.month, record.location, progress=progress)
    record.manifest = manifest
    record.summary = run_summary(connection, record)
    _advance(connection, record, ArchiveState.ARCHIVED, progress, f"archived to {record.location}")


def detach(connection, record: PartitionArchive, progress: Progress = None) -> None:
    """DETACH the partition (CONCURRENTLY when the table has no default partition), then check it is all archived."""
    detach_partition(connection, record.partition)
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT count(*) FROM "{record.partition}"')
        rows = cursor.fetchone()[0]
    if rows != record.manifest["tables"]["task_runs"]["rows"]:
        # Written between the archive and the detach: archive the frozen table again.
        _say(progress, f"{record.partition}: {rows} row(s) now, archive rewritten from the detached table")
        write_archive(connection, record, progress)
    _advance(connection, record, ArchiveState.DETACHED, progress, "detached")


def purge(connection, record: PartitionArchive, progress: Progress = None) -> None:
    """Delete the month's rows of the other tables, exactly those archived, in one transaction."""
    for attempt in range(2):
        try:
            with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
                archive.select_month(cursor, record.partition, record.month)
                expected = {table: entry["rows"] for table, entry in record.manifest["tables"].items()}
                if archive.count_rows(cursor, record.partition) != expected:
                    raise _StaleArchive
                _drop_run_foreign_keys(cursor, record.partition)
                for table in archive.PURGE_ORDER:
                    where = next(t.where for t in archive.TABLES if t.name == table)
                    cursor.execute(f'DELETE FROM "{table}" WHERE {where.format(p=record.partition)}')
                    if cursor.rowcount != expected[table]:
                        raise _StaleArchive
                _advance(
                    connection, record, ArchiveState.PURGED, progress, "alerts, lineage and runs deleted"
                )
                return
        except _StaleArchive:
            if attempt:
                raise RetentionError(
                    f"{record.partition}: the month's rows keep changing while it is archived; run again later"
                ) from None
            _say(
                progress, f"{record.partition}: rows changed since the archive was written; writing it again"
            )
            write_archive(connection, record, progress)
            record.state = ArchiveState.DETACHED
            record.save(using=connection.alias, update_fields=["state", "updated_at"])


def drop(connection, record: PartitionArchive, progress: Progress = None) -> None:
    statement = f'DROP TABLE IF EXISTS "{record.partition}"'
    with_lock_retries(
        connection, lambda: _execute(connection, statement), label=f"dropping {record.partition}"
    )
    _advance(connection, record, ArchiveState.DROPPED, progress, "dropped")


class _StaleArchive(Exception):
    pass


# What each state does next; its function commits the next state.
STEPS = {
    ArchiveState.ARCHIVING: write_archive,
    ArchiveState.ARCHIVED: detach,
    ArchiveState.DETACHED: purge,
    ArchiveState.PURGED: drop,
}


def _advance(connection, record, state, progress: Progress, what: str) -> None:
    record.state = state
    record.save(using=connection.alias)
    _say(progress, f"{record.partition}: {what}")


def _say(progress: Progress, text: str) -> None:
    log.info("%s", text)
    if progress:
        progress(text)


def run_summary(connection, record: PartitionArchive) -> dict:
    """What the database keeps of the month's pipeline runs: how many per pipeline and status."""
    lower, upper = partitioning.month_bounds(record.month)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pipeline_id::text, status, count(*) FROM pipeline_runs WHERE started_at >= %s "
            "AND started_at < %s GROUP BY 1, 2 ORDER BY 1, 2",
            [lower, upper],
        )
        summary: dict[str, dict[str, int]] = {}
        for pipeline_id, status, count in cursor.fetchall():
            summary.setdefault(pipeline_id, {})[status] = count
    return {"runs_per_pipeline": summary}


# ------------------------------------------------------------------ detaching
def attachment(connection, name: str) -> str:
    """``attached``, ``pending`` (an interrupted DETACH CONCURRENTLY), ``detached`` or ``missing``."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT to_regclass(%s) IS NOT NULL, (SELECT inhdetachpending FROM pg_inherits "
            "WHERE inhrelid = to_regclass(%s) AND inhparent = %s::regclass)",
            [f'"{name}"', f'"{name}"', partitioning.TABLE],
        )
        exists, pending = cursor.fetchone()
    if not exists:
        return "missing"
    if pending is None:
        return "detached"
    return "pending" if pending else "attached"


def detach_partition(connection, name: str) -> None:
    """Detach ``name`` from task_runs; finishes an interrupted concurrent detach; a no-op when detached.

    PostgreSQL forbids DETACH ... CONCURRENTLY while the table has a default partition (task_runs has one), so
    then it is a plain DETACH under the migrations' lock timeout, retried (docs/migrations.md).
    """
    state = attachment(connection, name)
    if state in ("detached", "missing"):
        return
    table = partitioning.TABLE
    if state == "pending":
        statement = f'ALTER TABLE "{table}" DETACH PARTITION "{name}" FINALIZE'
    elif partitioning.table_exists(connection, partitioning.DEFAULT_PARTITION):
        statement = f'ALTER TABLE "{table}" DETACH PARTITION "{name}"'
    else:
        statement = f'ALTER TABLE "{table}" DETACH PARTITION "{name}" CONCURRENTLY'
    if connection.in_atomic_block:
        raise RetentionError("detaching a partition must run outside a transaction")
    with_lock_retries(connection, lambda: _execute(connection, statement), label=f"detaching {name}")


def _execute(connection, statement: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(statement)


def _drop_run_foreign_keys(cursor, partition: str) -> None:
    """A detached partition keeps its foreign key to pipeline_runs; attaching it again brings it back."""
    cursor.execute(
        "SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'f' "
        "AND confrelid = 'pipeline_runs'::regclass",
        [f'"{partition}"'],
    )
    for (name,) in cursor.fetchall():
        cursor.execute(f'ALTER TABLE "{partition}" DROP CONSTRAINT "{name}"')


def with_lock_retries(connection, run: Callable[[], object], *, label: str, sleep=time.sleep):
    """``run()`` under the lock timeout, again after 1, 2, 4 … s on a lock timeout, up to ETL_MIGRATION_RETRIES."""
    policy = timeouts.TimeoutPolicy.from_settings()
    attempt = 1
    while True:
        try:
            with timeouts.session_timeouts(connection, policy):
                return run()
        except DatabaseError as exc:
            if not timeouts.is_lock_timeout(exc) or attempt > policy.retries:
                if timeouts.is_lock_timeout(exc):
                    raise RetentionError(
                        f"{label}: could not get its lock within {policy.lock_timeout:g} s after "
                        f"{attempt} attempt(s); find the session holding it in pg_stat_activity and run again"
                    ) from exc
                raise
            attempt += 1
            sleep(policy.wait_before(attempt))


# ------------------------------------------------------------------ restoring
def restore_month(
    month: dt.date, *, connection=default_connection, location: str | None = None, progress: Progress = None
) -> PartitionArchive:
    """Bring an archived month back as it was archived, in one transaction (nothing changes if it fails).

    Works from any state: an unfinished archive is rolled back (re-attached, its deleted rows reloaded), a
    dropped month is loaded from its archive. Without a record (another database), the archive's manifest at
    ``location`` is enough. The month then stays until archived again by hand (``--archive``).
    """
    month = partitioning.month_start(month)
    name = partitioning.partition_name(month)
    records = PartitionArchive.objects.using(connection.alias)
    record = records.filter(month=month).first()
    if record is None:
        location = location or str(conf.value("ETL_PARTITION_ARCHIVE_URL"))
        manifest = archive.read_manifest(location, name)
        if manifest is None:
            raise RetentionError(f"no archive of {month:%Y-%m} at {location} (no {name}/{archive.MANIFEST})")
        if partitioning.table_exists(connection, name):
            raise RetentionError(f"{name} exists already: the month {month:%Y-%m} is in the database")
        record = PartitionArchive(
            month=month, partition=name, location=location, manifest=manifest, state=ArchiveState.DROPPED
        )
    if record.state == ArchiveState.RESTORED:
        _say(progress, f"{name}: already restored")
        return record
    if record.state == ArchiveState.ARCHIVED and attachment(connection, name) in ("pending", "detached"):
        detach_partition(connection, name)  # a detach that stopped before its state was saved: finish it
        record.state = ArchiveState.DETACHED
    try:
        with transaction.atomic(using=connection.alias):
            if record.state == ArchiveState.DETACHED:
                partitioning.attach_month(connection, name, month)
            elif record.state == ArchiveState.PURGED:
                archive.load(
                    connection, record.manifest, record.location, ["pipeline_runs"], progress=progress
                )
                partitioning.attach_month(connection, name, month)
                archive.load(
                    connection,
                    record.manifest,
                    record.location,
                    ["alerts", "alert_deliveries", "data_lineage"],
                    progress=progress,
                )
            elif record.state == ArchiveState.DROPPED:
                archive.load(
                    connection, record.manifest, record.location, ["pipeline_runs"], progress=progress
                )
                partitioning.create_month(connection, month)
                archive.load(
                    connection,
                    record.manifest,
                    record.location,
                    ["task_runs", "alerts", "alert_deliveries", "data_lineage"],
                    progress=progress,
                )
            record.state = ArchiveState.RESTORED
            record.restored_at = timezone.now()
            record.save(using=connection.alias)
    except IntegrityError as exc:
        raise RetentionError(
            f"{name}: the archive refers to rows deleted since it was written ({str(exc).splitlines()[0]}); "
            "nothing was restored. Restore into a copy of the database, or recreate what is missing."
        ) from exc
    _say(progress, f"{name}: restored")
    return record
