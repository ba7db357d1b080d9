"""The daily partition job (the etl_partitions DAG and ``manage_partitions``): months ahead, retention, the check."""

from __future__ import annotations

import datetime as dt

from django.db import connections

from django_etl import conf
from django_etl.runs import partition_health, partitioning, retention


def maintain_partitions(
    *,
    months_ahead: int | None = None,
    retention_months: int | None = None,
    location: str | None = None,
    database: str = "default",
    today: dt.date | None = None,
    progress=None,
) -> dict:
    """Create the months ahead (moving default rows to their month), archive months past the retention, then check.

    Returns a JSON-able summary (the DAG's XCom). Settings: ETL_PARTITIONS_MONTHS_AHEAD,
    ETL_TASK_RUNS_RETENTION_MONTHS, ETL_PARTITION_ARCHIVE_URL; the arguments override them.
    """
    connection = connections[database]
    if not partitioning.is_postgresql(connection):
        return {"skipped": f"{connection.vendor}: task_runs is a plain table"}
    if months_ahead is None:
        months_ahead = int(conf.value("ETL_PARTITIONS_MONTHS_AHEAD"))

    def created(name: str, moved: int) -> None:
        if progress:
            suffix = f", moved {moved} row(s) out of the default partition" if moved else ""
            progress(f"created {name}{suffix}")

    with retention.exclusive(connection):  # one partition job at a time
        report = partitioning.ensure_partitions(
            connection,
            months_ahead=months_ahead,
            today=today,
            progress=created,
            archived=retention.archived_months(database),
        )
        archived = retention.apply_retention(
            connection, retention_months=retention_months, location=location, today=today, progress=progress
        )
    health = partition_health.inspect(connection, today=today)
    alerts = partition_health.report(health, using=database)
    return {
        "created": report.created,
        "moved_rows": report.moved_rows,
        "archived": {record.partition: record.state for record in archived},
        "future_months": [f"{m:%Y-%m}" for m in health.future_months],
        "default_rows": health.default_rows,
        "alerts": alerts,
    }
