"""Retention of task_runs months on PostgreSQL: archive, detach, purge, drop; resume after a stop; restore."""

from __future__ import annotations

import datetime as dt
import gzip
import io
import json
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from django_etl.runs import archive, maintenance, partitioning, retention

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.integration]

OLD, KEPT = dt.date(2019, 5, 1), dt.date(2019, 7, 1)
TODAY = dt.date(2019, 8, 20)  # with a retention of 1 month, months before 2019-07 are due
TABLES = ["pipeline_runs", "task_runs", "alerts", "alert_deliveries", "data_lineage"]


@pytest.fixture(autouse=True)
def drop_test_months():
    """The months these tests make (before 2020) are DDL, which no test transaction rolls back."""
    yield
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname FROM pg_class WHERE relname ~ '^task_runs_y(2018|2019)m' AND relkind IN ('r', 'p')"
        )
        for (name,) in cursor.fetchall():
            cursor.execute(f'DROP TABLE IF EXISTS "{name}"')


@pytest.fixture
def history(pipeline, make_step, organization):
    """Runs in OLD and KEPT: each two task runs, a lineage edge, a run alert with a delivery and a task alert."""
    from django_etl.lineage.models import DataLineage
    from django_etl.monitoring.models import Alert, AlertDelivery
    from django_etl.runs.models import PipelineRun, TaskRun

    extract = make_step("extract", "extract", {"connector": "x"}, 1)
    load = make_step("load", "load", {"connector": "y"}, 2)
    for month in (OLD, KEPT):
        for day in (3, 17, 28):
            started = dt.datetime(month.year, month.month, day, 23, 59, 59, tzinfo=dt.UTC)
            run = PipelineRun.objects.create(
                pipeline=pipeline,
                trigger_type="scheduled",
                status="failed" if day == 17 else "success",
                started_at=started,
                completed_at=started + dt.timedelta(minutes=3),
                metrics={"rows_loaded": day, "note": "tab\there, new\nline, back\\slash, é"},
                airflow_dag_id=pipeline.dag_id,
                airflow_run_id=f"scheduled__{started:%Y%m%d}",
            )
            first = TaskRun.objects.create(
                pipeline_run=run,
                pipeline_step=extract,
                status="success",
                logs="line 1\nline 2\r\n\\N",
                metrics={},
            )
            second = TaskRun.objects.create(
                pipeline_run=run, pipeline_step=load, status=run.status, input_data=None
            )
            DataLineage.objects.create(source_task=first, target_task=second, relationship_type="direct")
            if day == 17:
                alert = Alert.objects.create(
                    pipeline_run=run,
                    level="error",
                    alert_type="pipeline_failed",
                    message=f"run of {day} failed",
                )
                AlertDelivery.objects.create(
                    alert=alert, organization=organization, channel="email", level="error", target="a@b.io"
                )
                Alert.objects.create(
                    pipeline_run=run,
                    task_run=second,
                    level="error",
                    alert_type="task_failed",
                    message="load failed",
                )
    call_command("manage_partitions", stdout=io.StringIO())  # the months move out of the default
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return pipeline


def rows(table: str, month: dt.date | None = None) -> list[tuple]:
    """Every row of ``table`` (of ``month``'s runs when given), in a stable order, as the database returns it."""
    where, params = "", []
    if month is not None:
        lower, upper = partitioning.month_bounds(month)
        runs = "SELECT id FROM pipeline_runs WHERE started_at >= %s AND started_at < %s"
        tasks = "SELECT id FROM task_runs WHERE run_started_at >= %s AND run_started_at < %s"
        where = {
            "pipeline_runs": f"WHERE id IN ({runs})",
            "task_runs": f"WHERE id IN ({tasks})",
            "alerts": f"WHERE pipeline_run_id IN ({runs})",
            "alert_deliveries": f"WHERE alert_id IN (SELECT id FROM alerts WHERE pipeline_run_id IN ({runs}))",
            "data_lineage": f"WHERE target_task_id IN ({tasks})",
        }[table]
        params = [lower, upper]
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT * FROM "{table}" {where} ORDER BY id', params)
        return cursor.fetchall()


def snapshot(month: dt.date | None = None) -> dict[str, list[tuple]]:
    return {table: rows(table, month) for table in TABLES}


def run_retention(tmp_path: Path, **extra):
    return maintenance.maintain_partitions(
        retention_months=1, location=str(tmp_path / "archive"), today=TODAY, **extra
    )


def test_retention_archives_drops_and_restores_only_old_months(history, tmp_path):
    from django_etl.runs.models import ArchiveState, PartitionArchive

    old, kept = snapshot(OLD), snapshot(KEPT)
    assert len(old["task_runs"]) == 6 and len(old["alerts"]) == 2 and len(old["alert_deliveries"]) == 1

    summary = run_retention(tmp_path)

    assert summary["archived"] == {"task_runs_y2019m05": "dropped"}
    assert not partitioning.table_exists(connection, "task_runs_y2019m05")
    assert all(snapshot(OLD)[table] == [] for table in TABLES)  # gone from every table
    assert snapshot(KEPT) == kept  # the month inside the retention is untouched
    record = PartitionArchive.objects.get(month=OLD)
    assert record.state == ArchiveState.DROPPED
    assert record.summary["runs_per_pipeline"][str(history.pk)] == {"failed": 1, "success": 2}
    folder = tmp_path / "archive" / "task_runs_y2019m05"
    manifest = json.loads((folder / "manifest.json").read_text())
    assert {t: manifest["tables"][t]["rows"] for t in TABLES} == {t: len(old[t]) for t in TABLES}
    assert gzip.decompress((folder / "task_runs.copy.gz").read_bytes()).count(b"\n") == 6

    assert run_retention(tmp_path)["archived"] == {}  # again: nothing to do

    call_command("manage_partitions", "--restore", "2019-05", stdout=io.StringIO())
    assert snapshot(OLD) == old  # row for row, alerts, deliveries and lineage included
    assert snapshot(KEPT) == kept
    assert PartitionArchive.objects.get(month=OLD).state == ArchiveState.RESTORED
    assert run_retention(tmp_path)["archived"] == {}  # a restored month stays until archived by hand


@pytest.mark.parametrize("stop_in", ["detach", "purge", "drop"])
def test_retention_interrupted_between_steps_resumes(history, tmp_path, monkeypatch, stop_in):
    from django_etl.runs.models import ArchiveState, PartitionArchive

    old = snapshot(OLD)
    real = getattr(retention, stop_in)

    def crash(*args, **kwargs):
        raise KeyboardInterrupt(f"stopped before {stop_in}")

    monkeypatch.setitem(retention.STEPS, _state_before(stop_in), crash)
    with pytest.raises(KeyboardInterrupt):
        run_retention(tmp_path)
    assert PartitionArchive.objects.get(month=OLD).state == _state_before(stop_in)

    monkeypatch.setitem(retention.STEPS, _state_before(stop_in), real)
    assert run_retention(tmp_path)["archived"] == {"task_runs_y2019m05": "dropped"}
    assert PartitionArchive.objects.get(month=OLD).state == ArchiveState.DROPPED
    assert all(snapshot(OLD)[table] == [] for table in TABLES)

    retention.restore_month(OLD)
    assert snapshot(OLD) == old


@pytest.mark.parametrize("stop_in", ["detach", "purge", "drop"])
def test_restore_after_an_interrupted_archive_rolls_it_back(history, tmp_path, monkeypatch, stop_in):
    everything = snapshot()

    def crash(*args, **kwargs):
        raise KeyboardInterrupt(f"stopped before {stop_in}")

    monkeypatch.setitem(retention.STEPS, _state_before(stop_in), crash)
    with pytest.raises(KeyboardInterrupt):
        run_retention(tmp_path)
    retention.restore_month(OLD)
    assert snapshot() == everything
    assert "task_runs_y2019m05" in partitioning.existing_partitions(connection)


def _state_before(step: str):
    from django_etl.runs.models import ArchiveState

    before = {"detach": ArchiveState.ARCHIVED, "purge": ArchiveState.DETACHED, "drop": ArchiveState.PURGED}
    return before[step]


def test_restore_refuses_a_damaged_archive_and_changes_nothing(history, tmp_path):
    run_retention(tmp_path)
    path = tmp_path / "archive" / "task_runs_y2019m05" / "alerts.copy.gz"
    data = gzip.decompress(path.read_bytes()).replace(b"load failed", b"load FAILED")
    path.write_bytes(gzip.compress(data))
    before = snapshot()

    with pytest.raises(CommandError, match="checksum differs"):
        call_command("manage_partitions", "--restore", "2019-05")
    assert snapshot() == before
    assert not partitioning.table_exists(connection, "task_runs_y2019m05")


def test_restore_without_a_record_reads_the_archive_manifest(history, tmp_path):
    from django_etl.runs.models import PartitionArchive

    old = snapshot(OLD)
    run_retention(tmp_path)
    PartitionArchive.objects.all().delete()  # another database, or the record lost: the archive is enough

    retention.restore_month(OLD, location=str(tmp_path / "archive"))
    assert snapshot(OLD) == old


def test_retention_off_by_default_archives_nothing(history, tmp_path, settings):
    settings.ETL_PARTITION_ARCHIVE_URL = str(tmp_path / "archive")
    before = snapshot()
    summary = maintenance.maintain_partitions(today=TODAY)
    assert summary["archived"] == {}
    assert snapshot() == before
    assert not (tmp_path / "archive").exists()


def test_archive_to_object_storage_round_trip(history, settings, s3_bucket):
    from tests.support.servers import S3_KEY_ID, S3_SECRET

    settings.ETL_STAGING_S3_ENDPOINT_URL = s3_bucket["endpoint"]
    settings.ETL_STAGING_S3_ACCESS_KEY_ID = S3_KEY_ID
    settings.ETL_STAGING_S3_SECRET_ACCESS_KEY = S3_SECRET
    location = f"s3://{s3_bucket['name']}/archive"
    old = snapshot(OLD)

    maintenance.maintain_partitions(retention_months=1, location=location, today=TODAY)
    listed = s3_bucket["client"].list_objects_v2(
        Bucket=s3_bucket["name"], Prefix="archive/task_runs_y2019m05/"
    )
    assert {item["Key"].rsplit("/", 1)[1] for item in listed["Contents"]} == {
        "manifest.json",
        *(f"{table}.copy.gz" for table in TABLES),
    }
    assert snapshot(OLD)["task_runs"] == []

    retention.restore_month(OLD)
    assert snapshot(OLD) == old


def test_manage_partitions_rejects_a_malformed_month():
    with pytest.raises(CommandError, match="YYYY-MM"):
        call_command("manage_partitions", "--restore", "May 2019")


def test_archive_of_a_month_without_partition_is_refused():
    with pytest.raises(archive.ArchiveError, match="no month 2017-02"):
        retention.archive_month(dt.date(2017, 2, 1))


def test_a_second_partition_job_is_refused_while_one_runs(history, tmp_path):
    import psycopg

    settings_dict = connection.settings_dict
    other = psycopg.connect(
        host=settings_dict["HOST"] or "127.0.0.1",
        port=settings_dict["PORT"] or 5432,
        user=settings_dict["USER"],
        dbname=settings_dict["NAME"],
        autocommit=True,
    )
    try:
        other.execute("SELECT pg_advisory_lock(hashtext(%s))", [retention.LOCK_KEY])
        with pytest.raises(CommandError, match="another manage_partitions"):
            call_command("manage_partitions", "--retention-months", "1", stdout=io.StringIO())
        other.execute("SELECT pg_advisory_unlock(hashtext(%s))", [retention.LOCK_KEY])
    finally:
        other.close()  # (a closed session's locks are released a moment later, not at once)
    assert run_retention(tmp_path)["archived"] == {"task_runs_y2019m05": "dropped"}  # free again


def test_the_archive_folder_is_out_of_every_connectors_reach(settings, tmp_path):
    from django_etl.dataplane.files import path_refusal

    settings.ETL_FILE_ROOTS = [str(tmp_path)]
    settings.ETL_PARTITION_ARCHIVE_URL = str(tmp_path / "archive")
    assert "overlaps the run archive" in path_refusal(tmp_path / "archive" / "task_runs_y2019m05")
    assert "overlaps the run archive" in path_refusal(tmp_path)  # a root holding it
    assert path_refusal(tmp_path / "landing") is None
