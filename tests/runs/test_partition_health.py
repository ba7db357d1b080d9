"""The partition check: one platform alert while task_runs lacks future months or holds rows in its default."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core import checks
from django.db import connection

from django_etl.runs import maintenance, partition_health, partitioning

pytestmark = [pytest.mark.django_db, pytest.mark.integration]


@pytest.fixture
def stray_task_run(pipeline, make_step):
    """A task run of a month without a partition (2019-03): it lands in the default partition."""
    from django_etl.runs.models import PipelineRun, TaskRun

    step = make_step("only", "notify", {"email": ["a@b.io"]}, 1)
    started = dt.datetime(2019, 3, 14, 12, 0, tzinfo=dt.UTC)
    run = PipelineRun.objects.create(pipeline=pipeline, trigger_type="scheduled", started_at=started)
    return TaskRun.objects.create(pipeline_run=run, pipeline_step=step)


def partition_alerts():
    from django_etl.monitoring.models import Alert

    return Alert.objects.filter(
        alert_type="resource_exhaustion", condition_key__startswith="resource_exhaustion:task_runs"
    )


def test_check_raises_one_alert_while_rows_sit_in_the_default_partition(stray_task_run):
    health = partition_health.inspect(connection)
    assert health.default_rows == 1 and health.default_months == [dt.date(2019, 3, 1)]
    assert partition_health.report(health)[partition_health.DEFAULT_CONDITION] == "raised"
    partition_health.report(partition_health.inspect(connection))  # the next day: the same alert, updated

    alert = partition_alerts().get()
    assert alert.organization_id is None and alert.pipeline_run_id is None  # platform level
    assert alert.level == "warning" and alert.occurrences == 2 and not alert.is_resolved
    assert "task_runs_default holds 1 row(s) (months 2019-03)" in alert.message
    assert "manage_partitions" in alert.message

    summary = maintenance.maintain_partitions()  # moves the row into a new 2019-03 partition, then checks
    assert summary["moved_rows"] == {"task_runs_y2019m03": 1}
    assert summary["alerts"][partition_health.DEFAULT_CONDITION] == "resolved"
    alert.refresh_from_db()
    assert alert.is_resolved and alert.metadata["resolution"]["how"] == "condition_cleared"


def test_check_raises_an_error_when_fewer_than_two_future_months_exist():
    this_month = partitioning.month_start(dt.datetime.now(dt.UTC))
    later = partitioning.add_months(this_month, 2)  # the migration made 3 months ahead: only one after this
    health = partition_health.inspect(connection, today=later)
    assert health.missing_future == [partitioning.add_months(later, 2)]
    partition_health.report(health)
    alert = partition_alerts().get(condition_key=partition_health.FUTURE_CONDITION)
    assert alert.level == "error" and alert.organization_id is None
    assert f"missing {partitioning.add_months(later, 2):%Y-%m}" in alert.message

    assert partition_health.inspect(connection).missing_future == []  # today: three months ahead exist
    assert not partition_alerts().filter(condition_key=partition_health.DEFAULT_CONDITION).exists()


def test_system_check_warns_about_rows_in_the_default_partition(stray_task_run):
    found = checks.run_checks(tags=[checks.Tags.database], databases=["default"])
    assert [message.id for message in found if message.id.startswith("runs.")] == ["runs.W002"]


def test_job_does_not_recreate_an_archived_month(stray_task_run):
    from django_etl.runs.models import ArchiveState, PartitionArchive

    PartitionArchive.objects.create(
        month=dt.date(2019, 3, 1), partition="task_runs_y2019m03", state=ArchiveState.DROPPED, location="x"
    )
    summary = maintenance.maintain_partitions()
    assert summary["created"] == [] and summary["default_rows"] == 1  # the late row waits for a restore
    assert summary["alerts"][partition_health.DEFAULT_CONDITION] == "raised"
